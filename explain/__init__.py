"""Explanations: what a model computes, as arrays the pages and viz/ draw (no Streamlit here)."""

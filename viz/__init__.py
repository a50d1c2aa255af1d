"""Pure plotting functions: arrays in, Plotly figures out. No Streamlit, no training, no loading."""

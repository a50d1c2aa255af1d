"""Glassbox training: datasets and preprocessing, the tokenizer, the trainer, jobs and runs."""

"""Home: what Glassbox is, and a link to each page."""
import streamlit as st

from app_pages import common

st.title("Glassbox")
st.markdown(
    "Glassbox lets a class **look inside a neural network**. Pick a small convolutional network "
    "(CNN), recurrent network (RNN, LSTM, GRU) or Transformer, or design your own, and see what "
    "every layer does to the shape of the data and how many numbers (parameters) it learns."
)
st.markdown("The model you are working with, the *current model*, is always named in the sidebar.")

with st.container(border=True):
    st.subheader("Start here")
    st.markdown("New to neural networks, or teaching a class? The **Lessons** go step by step through what a "
                "convolution computes, pooling, training and more, each on a ready-trained model, with one thing "
                "to try and a question at every step.")
    st.page_link("app_pages/lessons.py", label="Start here: the Lessons", icon=":material/school:")

st.subheader("Pages")
for file, title, icon, what in common.PAGES:
    st.page_link(file, label=title, icon=icon)
    st.caption(what)

st.info("Every page works with the current model, trained or not. Train it on the Train page, then the "
        "Inspect pages' training-step slider shows how its filters, hidden states and attention formed.", icon=":material/school:")

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

st.subheader("Pages")
for file, title, icon, what in common.PAGES:
    st.page_link(file, label=title, icon=icon)
    st.caption(what)

st.info("Pages for inspecting a trained model (feature maps, hidden states, attention, attributions) "
        "are being built.", icon=":material/construction:")

"""User text shown in a Markdown element (names, class names, words) is never read as markup."""
import re

import pytest
from app_pages import common
from app_pages.common import as_markdown_text
from tests.app_helpers import open_page, run


@pytest.mark.parametrize("text, shown", [
    ("digits-cnn", "digits-cnn"),  # a plain name stays as typed
    ("**bold** _it_", r"\*\*bold\*\* \_it\_"),
    (":red[x] :smile:", r"\:red\[x\] \:smile\:"),  # Streamlit's colours and emoji shortcodes
    ("<b>y</b> & &amp;", r"\<b\>y\</b\> \& \&amp;"),
    ("[link](http://e)", r"\[link\](http\://e)"),
    ("$x^2$ `code` a|b ~~s~~", r"\$x^2\$ \`code\` a\|b \~\~s\~\~"),
    ("- item\n# head\n12. first\n+ more", "\\- item\n\\# head\n12\\. first\n\\+ more"),
])
def test_markup_is_escaped_and_plain_text_is_left_alone(text, shown):
    assert as_markdown_text(text) == shown


def test_the_sidebar_shows_a_models_name_as_typed():
    at = open_page("home")
    at.session_state[common.CURRENT_MODEL].spec.name = "**big** :red[x] <b>y</b>"
    run(at)
    shown = [m.value for m in at.sidebar.markdown]
    assert any(value.startswith(r"\*\*big\*\* \:red\[x\] \<b\>y\</b\> · CNN") for value in shown), shown
    assert not any(re.search(r"(?<!\\)\*\*big", value) for value in shown)

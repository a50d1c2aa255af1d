"""The registry of the lessons' live views: a lesson file's ``view = "conv_sum"`` names one.

Each view is ``view(options, key)`` (see ``lesson_views_cnn``); the lessons of each kind of
model keep theirs in a module of their own.
"""
from app_pages import lesson_views_cnn, lesson_views_text

VIEWS = {**lesson_views_cnn.VIEWS, **lesson_views_text.VIEWS}

"""The Attributions page's "which map to believe?" section: each method's deletion and insertion
curves beside a random ranking's, a table ranking the methods, and one sentence on what the
numbers mean (``explain.faithfulness_report``). Computed once per server for the same model,
input, class and maps, like the maps themselves."""
from __future__ import annotations

from dataclasses import astuple

import streamlit as st

from app_pages import common
from app_pages import inspect_ui as ui
from app_pages import shared_views
from app_pages.shared_views import figure_once
from explain.faithfulness import DEFAULT_STEPS
from explain.faithfulness_report import RANDOM_LABEL, faithfulness_report
from viz.faithfulness import RANK_ORDER, SCORE_COLUMNS, TABLE_NOTE, faithfulness_curves, faithfulness_table

KEPT = 16  # reports kept for the whole server while a class flips between inputs and methods
KEPT_S = 30 * 60  # a report nobody asked for this long is dropped


@st.cache_resource(show_spinner=False, max_entries=KEPT, ttl=KEPT_S)
def shared_report(model_key: str, content: str, target_class: int, captum_metrics: bool, _model, _x, _maps,
                  _baseline, _settings) -> list:
    """The faithfulness report for one model (by content), input, class, set of maps and
    settings, shared by every session that asks (read it only). The progress bar is part of the
    result: on a repeat it is replayed, already emptied."""
    bar = st.progress(0.0, text="Faithfulness: starting…")

    def progress(done: int, total: int, label: str) -> None:
        bar.progress(done / max(total, 1), text=f"Faithfulness: {label} ({done + 1} of {total})…")

    try:
        return faithfulness_report(_model, _x, target_class, _maps, DEFAULT_STEPS, _baseline, captum_metrics,
                                   _settings, progress)
    finally:
        bar.empty()


def show_faithfulness(model, x, target_class: int, attributions: list, kind: str, baseline=None, settings=None,
                      class_name: str | None = None) -> None:
    """The section, for ``attributions`` (``explain.attributions.Attribution`` results on ``x``, a
    picture (``kind`` "image") or token ids (``kind`` "tokens")) of class ``target_class``."""
    picture = kind == "image"
    st.subheader("Which map to believe?")
    captum_metrics = False
    if picture:
        captum_metrics = st.toggle("Also infidelity and max-sensitivity (slower: each method runs again on noisy "
                                   "copies of the picture)", key="attr_faith_captum", persist_state="session")
    maps = [(a.method, a.label, a.values) for a in attributions]
    settings_key = astuple(settings) if settings is not None else None
    try:
        report = shared_report(shared_views.model_key(model),
                               shared_views.content_key(x, baseline, maps, settings_key, kind),
                               target_class, captum_metrics, model, x, maps, baseline, settings)
    except (ValueError, RuntimeError, IndexError) as err:  # the maps above stay; only this section is missing
        st.warning(f"The faithfulness numbers could not be computed: {common.sentence(err)}")
        return
    reference = next(s for s in report if s.method is None)
    rows = [{"method": s.label, "deletion": s.deletion.auc, "insertion": s.insertion.auc,
             "comprehensiveness": s.eraser.comprehensiveness if s.eraser else None,
             "sufficiency": s.eraser.sufficiency if s.eraser else None,
             "infidelity": s.infidelity, "max_sensitivity": s.max_sensitivity} for s in report]
    unit = "pixels" if picture else "words"
    pad = common.as_markdown_text("<pad>")
    removed = "made black" if picture else f"replaced by {pad}"
    quoted = f"“{common.as_markdown_text(class_name)}”" if class_name is not None else "the class"
    st.markdown(
        f"Each method's most important {unit} are {removed} first, step by step (deletion), or shown first on "
        f"{'a black picture' if picture else 'a sentence of ' + pad} (insertion), and the probability of "
        f"{quoted} is measured after each step: a map the model really follows makes it fall fast and rise "
        f"fast, so a small deletion area and a large insertion area; methods are ranked by {RANK_ORDER}, and a "
        "random ranking of the same input shows what a map that knows nothing scores.")
    # Infidelity and the like can be tiny: significant digits, not Streamlit's fixed decimals.
    st.dataframe(faithfulness_table(rows, reference=RANDOM_LABEL), hide_index=True,
                 column_config={header: st.column_config.NumberColumn(format="%.3g") for header in SCORE_COLUMNS.values()})
    st.caption(TABLE_NOTE)
    if not picture:
        st.caption("Comprehensiveness: how much the probability drops without the top 1, 5, 10, 20 and 50% of the "
                   "words (averaged); sufficiency: how much it drops with only them (DeYoung et al., 2020).")
    if captum_metrics:
        st.caption("Infidelity: how badly the map predicts what small random changes of the picture do to the "
                   "score; max-sensitivity: how much the map itself changes under tiny changes (Yeh et al., 2019). "
                   "Lower is better for both.")
    fractions = reference.deletion.fractions
    figure = figure_once(faithfulness_curves, fractions, {s.label: s.deletion.probabilities for s in report},
                         {s.label: s.insertion.probabilities for s in report}, reference=RANDOM_LABEL,
                         class_name=class_name)
    ui.show_figure(figure, "attr_faith_curves", "faithfulness-curves")

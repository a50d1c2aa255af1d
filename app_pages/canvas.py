"""A square drawing canvas (mouse, pen or finger) that hands the drawing back as a PNG.

Built on Streamlit's inline components (``st.components.v2``): no package to install, no
build step. White ink on a black square, like the digits datasets; the picture goes through
the model's own preprocessing like any upload. The PNG reaches Python as a data URL after
each stroke; "Clear" sends an empty value.
"""
from __future__ import annotations

import streamlit as st

CANVAS_SIDE = 280  # pixels on screen; the model's preprocessing shrinks it to the input size
STROKE = 20  # pen width in screen pixels: about a digit's stroke once shrunk to 16×16 or 28×28

_HTML = f"""
<div class="gb-draw">
  <canvas width="{CANVAS_SIDE}" height="{CANVAS_SIDE}" aria-label="drawing canvas"></canvas>
  <div class="gb-draw-row"><button type="button" class="gb-clear">Clear</button>
  <span class="gb-hint">Draw one digit, large, in the middle.</span></div>
</div>
"""

_CSS = """
.gb-draw canvas { background: #000; border-radius: 8px; touch-action: none; cursor: crosshair; display: block; }
.gb-draw-row { display: flex; gap: .8em; align-items: center; margin-top: .4em; font-family: sans-serif; }
.gb-clear { padding: .3em .9em; border-radius: .5em; border: 1px solid #bbb; background: #fff; cursor: pointer; }
.gb-hint { color: #666; font-size: .85em; }
"""

_JS = f"""
export default function(component) {{
  const {{ parentElement, setStateValue }} = component;
  const canvas = parentElement.querySelector("canvas");
  const clear = parentElement.querySelector(".gb-clear");
  if (canvas.dataset.ready) return;  // the same canvas after a rerun: keep the drawing
  canvas.dataset.ready = "1";
  const pen = canvas.getContext("2d");
  pen.lineCap = "round"; pen.lineJoin = "round"; pen.lineWidth = {STROKE}; pen.strokeStyle = "#fff";
  const blank = () => {{ pen.fillStyle = "#000"; pen.fillRect(0, 0, canvas.width, canvas.height); }};
  blank();  // opaque black, not transparent: the PNG must look like what is on screen
  let drawing = false;
  const at = (event) => {{
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
  }};
  canvas.addEventListener("pointerdown", (event) => {{
    drawing = true; canvas.setPointerCapture(event.pointerId);
    const [x, y] = at(event); pen.beginPath(); pen.moveTo(x, y); pen.lineTo(x + 0.01, y); pen.stroke();
  }});
  canvas.addEventListener("pointermove", (event) => {{
    if (!drawing) return;
    const [x, y] = at(event); pen.lineTo(x, y); pen.stroke();
  }});
  const finish = () => {{
    if (!drawing) return;
    drawing = false; setStateValue("png", canvas.toDataURL("image/png"));
  }};
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointercancel", finish);
  clear.addEventListener("click", () => {{
    blank(); setStateValue("png", "");
  }});
}}
"""

_canvas = st.components.v2.component("glassbox.drawing_canvas", html=_HTML, css=_CSS, js=_JS)


def drawing_canvas(key: str) -> str | None:
    """Draw the canvas; the drawing as a PNG data URL, or None before anything is drawn."""
    result = _canvas(key=key, default={"png": ""}, on_png_change=lambda: None, width=CANVAS_SIDE + 10)
    return result.png or None

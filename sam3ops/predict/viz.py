"""Pictures of results: a PNG overlay and a self-contained interactive plotly page.

Each prompt gets one colour everywhere (overlay, page, legend), so the same concept looks the
same across images. Results of random weights carry a red RANDOM WEIGHTS banner on the picture
itself and on the page: a screenshot or a copied PNG cannot pass for a real model's output.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from sam3ops.inference.result import Result

# Plotly's qualitative "Plotly" palette, extended: distinct hues that read on photos.
PALETTE = ["#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692", "#B6E880",
           "#FF97FF", "#FECB52", "#1F77B4", "#D62728"]
MAX_PAGE_SIDE = 512  # the interactive page shows a downscaled copy: every mask pixel is in the page
RANDOM_BANNER = "RANDOM WEIGHTS: these masks mean nothing"
SHORT_BANNER = "RANDOM WEIGHTS"
BANNER_RGB = (200, 0, 0)


def prompt_colors(prompts: list[str]) -> dict[str, str]:
    """A hex colour per prompt, in prompt order."""
    return {prompt: PALETTE[i % len(PALETTE)] for i, prompt in enumerate(prompts)}


def _rgb(hex_color: str) -> tuple[int, int, int]:
    return tuple(int(hex_color[i:i + 2], 16) for i in (1, 3, 5))


def overlay(image: Image.Image, result: Result, *, alpha: float = 0.45, random_weights: bool = False) -> Image.Image:
    """``image`` with each instance's mask tinted in its prompt's colour, its box, label and score.

    With ``random_weights``, a red :data:`RANDOM_BANNER` across the top, drawn over everything.
    """
    colors = prompt_colors(result.prompts)
    canvas = np.asarray(image.convert("RGB"), dtype=np.float32).copy()
    for mask, label in zip(result.masks, result.labels):
        canvas[mask] = canvas[mask] * (1 - alpha) + np.array(_rgb(colors[label]), np.float32) * alpha
    picture = Image.fromarray(canvas.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=max(12, min(picture.size) // 40))
    width = max(2, min(picture.size) // 300)
    for box, label, score in zip(result.boxes, result.labels, result.scores):
        color = _rgb(colors[label])
        x0, y0, x1, y1 = (float(v) for v in box)
        draw.rectangle([x0, y0, x1, y1], outline=color, width=width)
        text = f"{label} {score:.2f}"
        left, top, right, bottom = draw.textbbox((x0, y0), text, font=font)
        y_text = y0 - (bottom - top) - 2 if y0 - (bottom - top) - 2 >= 0 else y0
        draw.rectangle([x0, y_text, x0 + right - left + 4, y_text + bottom - top + 2], fill=color)
        draw.text((x0 + 2, y_text - (top - y0)), text, fill=(255, 255, 255), font=font)
    if random_weights:
        _banner(draw, picture.width)
    return picture


def _banner(draw: ImageDraw.ImageDraw, width: int) -> None:
    """The red random-weights bar across the top, its text as large as fits (at least 10 px; on a
    picture too narrow for the sentence, only its first two words)."""
    text, size = RANDOM_BANNER, max(10, width // 18)
    font = ImageFont.load_default(size=size)
    while draw.textlength(text, font=font) > 0.94 * width and (size > 10 or text != SHORT_BANNER):
        if size > 10:
            size -= 1
            font = ImageFont.load_default(size=size)
        else:
            text, size = SHORT_BANNER, max(10, width // 18)
            font = ImageFont.load_default(size=size)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    pad = max(3, size // 3)
    draw.rectangle([0, 0, width, bottom - top + 2 * pad], fill=BANNER_RGB)
    draw.text(((width - (right - left)) / 2 - left, pad - top), text, fill=(255, 255, 255), font=font)


def _png_data_uri(picture: Image.Image) -> str:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def interactive_page(image: Image.Image, result: Result, path: Path, *, title: str = "",
                     random_weights: bool = False) -> Path:
    """Write a self-contained HTML page (plotly.js embedded: it opens offline) of ``result``.

    One toggle button per prompt shows or hides that prompt's masks and boxes; hovering a box
    shows its label and score. Masks are embedded as transparent PNGs, which keeps the page small.
    With ``random_weights`` the title starts with :data:`RANDOM_BANNER`, in red.
    """
    import plotly.graph_objects as go

    scale = min(1.0, MAX_PAGE_SIDE / max(image.size))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    colors = prompt_colors(result.prompts)
    figure = go.Figure(go.Image(source=_png_data_uri(image.convert("RGB").resize(size)), hoverinfo="skip"))
    buttons = []
    for prompt in result.prompts:
        mine = [i for i, label in enumerate(result.labels) if label == prompt]
        union = result.masks[mine].any(axis=0) if mine else np.zeros(result.size, bool)
        tint = np.zeros((*result.size, 4), np.uint8)
        tint[union] = (*_rgb(colors[prompt]), 128)
        first = len(figure.data)
        figure.add_trace(go.Image(source=_png_data_uri(Image.fromarray(tint, "RGBA").resize(size, Image.NEAREST)),
                                  name=prompt, hoverinfo="skip"))
        for i in mine:
            x0, y0, x1, y1 = (float(v) * scale for v in result.boxes[i])
            figure.add_trace(go.Scatter(
                x=[x0, x1, x1, x0, x0], y=[y0, y0, y1, y1, y0], mode="lines", line={"color": colors[prompt]},
                showlegend=False, hoverinfo="text", text=f"{prompt} {result.scores[i]:.2f}", name=prompt,
            ))
        traces = list(range(first, len(figure.data)))
        buttons.append({"label": f"{prompt} ({len(mine)})", "method": "restyle",
                        "args": [{"visible": True}, traces], "args2": [{"visible": False}, traces]})
    title = title or result.image
    if random_weights:
        title = f"<span style='color:rgb{BANNER_RGB}'><b>{RANDOM_BANNER}</b></span><br>{title}"
    figure.update_layout(
        title=title, margin={"l": 10, "r": 180, "t": 70 if random_weights else 40, "b": 10}, showlegend=False,
        updatemenus=[{"type": "buttons", "direction": "down", "buttons": buttons, "showactive": False,
                      "x": 1.02, "xanchor": "left", "y": 1, "yanchor": "top"}],
        annotations=[{"text": "show / hide:", "x": 1.02, "xref": "paper", "xanchor": "left",
                      "y": 1.04, "yref": "paper", "showarrow": False}],
    )
    figure.update_yaxes(visible=False)
    figure.update_xaxes(visible=False)
    page = figure.to_html(include_plotlyjs=True, full_html=True)
    if random_weights:  # the browser tab says it too
        page = page.replace("<head>", f"<head><title>{RANDOM_BANNER}</title>", 1)
    Path(path).write_text(page, encoding="utf-8")
    return Path(path)

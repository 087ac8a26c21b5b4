"""Small inline previews for the Dagster UI (markdown images with ``data:`` URIs).

Every materialization keeps its metadata in the event log, so previews stay a few tens of KB.
"""

from __future__ import annotations

import base64
import io

from PIL import Image


def jpeg_data_uri(image: Image.Image, max_width: int = 320, quality: int = 70) -> str:
    image = image.convert("RGB")
    if image.width > max_width:
        image = image.resize((max_width, max(1, image.height * max_width // image.width)))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def contact_sheet(
    images: list[Image.Image], columns: int = 4, cell_width: int = 160
) -> Image.Image:
    """The images side by side in a grid, each ``cell_width`` wide."""
    first = images[0]
    cell_height = max(1, first.height * cell_width // first.width)
    rows = (len(images) + columns - 1) // columns
    sheet = Image.new("RGB", (cell_width * min(columns, len(images)), cell_height * rows))
    for index, image in enumerate(images):
        thumb = image.convert("RGB").resize((cell_width, cell_height))
        sheet.paste(thumb, ((index % columns) * cell_width, (index // columns) * cell_height))
    return sheet


def markdown_image(image: Image.Image, alt: str, max_width: int = 320) -> str:
    return f"![{alt}]({jpeg_data_uri(image, max_width=max_width)})"

"""Input images: every odd format becomes RGB, every bad file a clear one-line ImageError."""

import numpy as np
import pytest
from PIL import Image

from sam3ops.errors import ImageError, UsageError
from sam3ops.inference.images import collect_images, load_image
from sam3ops.predict.samples import sample_image


@pytest.fixture
def astronaut():
    return sample_image("astronaut")


def test_collect_folder_glob_and_missing(tmp_path, astronaut):
    (tmp_path / "b.png").write_bytes(b"")
    astronaut.save(tmp_path / "a.jpg")
    (tmp_path / "notes.txt").write_text("x")
    assert collect_images([str(tmp_path)]) == [tmp_path / "a.jpg", tmp_path / "b.png"]
    assert collect_images([str(tmp_path / "*.jpg")]) == [tmp_path / "a.jpg"]
    assert collect_images([str(tmp_path / "gone.png")]) == [tmp_path / "gone.png"]  # reported when loaded
    with pytest.raises(UsageError, match="no images found"):
        collect_images([str(tmp_path / "*.gif")])
    with pytest.raises(UsageError, match="no images given"):
        collect_images([])


@pytest.mark.parametrize("mode", ["L", "1", "CMYK", "P", "RGBA", "LA", "YCbCr"])
def test_modes_become_rgb(tmp_path, astronaut, mode):
    path = tmp_path / ("x.jpg" if mode in ("CMYK", "YCbCr") else "x.png")
    picture = astronaut.convert(mode) if mode != "P" else astronaut.quantize(64)
    if mode == "YCbCr":
        picture.save(path)  # JPEG stores YCbCr
    else:
        picture.save(path)
    loaded = load_image(path)
    assert loaded.mode == "RGB" and loaded.size == astronaut.size
    assert np.asarray(loaded).std() > 10  # still a photo, not a blank


def test_rgba_transparency_goes_white(tmp_path):
    picture = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    picture.save(tmp_path / "t.png")
    assert load_image(tmp_path / "t.png").getpixel((0, 0)) == (255, 255, 255)


def test_palette_with_transparency(tmp_path):
    picture = Image.new("P", (8, 8), 0)
    picture.putpalette([0, 255, 0] * 256)
    picture.info["transparency"] = 0
    picture.save(tmp_path / "p.png", transparency=0)
    assert load_image(tmp_path / "p.png").getpixel((0, 0)) == (255, 255, 255)


def test_16_bit_grayscale_keeps_its_range(tmp_path):
    values = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    loaded = np.asarray(load_image(tmp_path / "deep.png"))
    assert loaded[0, 0, 0] == 0 and loaded[-1, -1, 0] == 255 and 120 <= loaded[32, 0, 0] <= 135


def test_exif_orientation_applied(tmp_path, astronaut):
    wide = astronaut.crop((0, 0, 512, 256))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    wide.save(tmp_path / "rotated.jpg", exif=exif)
    assert load_image(tmp_path / "rotated.jpg").size == (256, 512)


def test_bad_files_each_get_one_line(tmp_path, astronaut):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image at all")
    astronaut.save(tmp_path / "whole.jpg")
    data = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (tmp_path / "folder.png").mkdir()
    cases = {"empty.png": "empty file", "text.png": "not an image", "truncated.jpg": "corrupt or truncated",
             "missing.png": "no such file", "folder.png": "not a file"}
    for name, reason in cases.items():
        with pytest.raises(ImageError, match=reason) as info:
            load_image(tmp_path / name)
        assert "\n" not in info.value.one_line()


def test_pixel_limit_refuses_bombs_before_decoding(tmp_path):
    Image.new("1", (10000, 10000)).save(tmp_path / "big.png")  # 100 MP in a few KB
    assert (tmp_path / "big.png").stat().st_size < 100_000
    with pytest.raises(ImageError, match="100 MP, over the 64 MP limit") as info:
        load_image(tmp_path / "big.png")
    assert "--max-pixels" in info.value.one_line()
    assert load_image(tmp_path / "big.png", max_pixels=10**9).size == (10000, 10000)


def test_pil_refuses_real_bombs_too(tmp_path):
    Image.new("1", (20000, 20000)).save(tmp_path / "bomb.png")  # 400 MP: past PIL's own hard limit
    with pytest.raises(ImageError, match="decompression bomb"):
        load_image(tmp_path / "bomb.png", max_pixels=10**12)


def test_unknown_sample_image():
    with pytest.raises(UsageError, match="unknown sample image 'eagle'") as info:
        sample_image("eagle")  # scikit-image fetches that one from the internet: not offered
    assert "astronaut" in info.value.one_line()

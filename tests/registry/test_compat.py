"""Versions registered before the registry became a package still load."""

from sam3ops.registry.pyfunc import Sam3PyFunc


def test_the_old_entry_files_import_still_finds_the_model_class():
    namespace: dict = {}
    exec("from sam3ops.pyfunc import Sam3PyFunc", namespace)  # the line in those versions' entry file
    assert namespace["Sam3PyFunc"] is Sam3PyFunc

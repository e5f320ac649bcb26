"""colab.py: what the notebook's first cell installs in Colab, when it asks for a restart, and Drive.

Colab itself does not run here: these are the cell's decisions, on made-up environments."""


import pytest

import colab
from conftest import ROOT


def test_colab_installs_the_kits_own_requirements_but_not_jupyters_stack():
    required, optional = colab.colab_requirements((ROOT / "requirements.txt").read_text())
    names = [line.split("=")[0].split(">")[0].split(";")[0].strip() for line in required]
    assert "tensorflow" in names and "ai-edge-litert" in names and "espeakng-loader" in names
    assert not {"jupyter", "ipykernel", "nbclient", "nbconvert"} & set(names)
    assert [line.split("==")[0] for line in optional] == ["tflite-micro"]


def test_colab_does_not_install_the_semester_lock():
    required, optional = colab.colab_requirements((ROOT / "requirements.txt").read_text())
    assert not [line for line in required + optional if line.startswith(("protobuf", "keras", "h5py"))]
    assert any(line.startswith("numpy>=") for line in required)  # a range: Colab's NumPy is kept if it fits


def test_a_requirement_met_by_the_installed_version_is_not_installed_again():
    requirements = ["tensorflow==2.21.*", "numpy>=1.26,<3", "scipy>=1.11,<2"]
    installed = {"tensorflow": "2.21.0", "numpy": "2.0.2", "scipy": "1.10.1"}
    assert colab.unmet_requirements(requirements, installed) == ["scipy>=1.11,<2"]


def test_a_requirement_for_another_python_or_platform_counts_as_met():
    requirements = ['tomli>=2; python_version < "3.0"', 'tflite-micro==0.dev1; sys_platform == "nowhere"']
    assert colab.unmet_requirements(requirements, {}) == []


def test_a_prerelease_pin_is_met_by_that_prerelease():
    assert colab.unmet_requirements(["tflite-micro==0.dev20261023182759"],
                                    {"tflite-micro": "0.dev20261023182759"}) == []


def test_a_replaced_package_whose_modules_are_loaded_asks_for_a_restart():
    before = {"numpy": "2.0.2", "protobuf": "5.29.0", "tensorflow": "2.19.0"}
    after = {"numpy": "2.0.2", "protobuf": "7.36.2", "tensorflow": "2.21.0"}
    providers = {"google": ["protobuf", "googleapis-common-protos"], "numpy": ["numpy"], "tensorflow": ["tensorflow"]}
    loaded = ["numpy", "numpy.linalg", "google.protobuf.message", "sys"]
    assert colab.replaced_while_loaded(before, after, loaded, providers) == ["protobuf"]


def test_a_package_replaced_before_anything_imported_it_needs_no_restart():
    before, after = {"tensorflow": "2.19.0"}, {"tensorflow": "2.21.0"}
    assert colab.replaced_while_loaded(before, after, ["numpy", "sys"], {"tensorflow": ["tensorflow"]}) == []


def test_the_restart_message_names_the_packages_and_what_to_do():
    message = colab.restart_message(["numpy", "protobuf"])
    assert "numpy, protobuf" in message and "Runtime > Restart session" in message and "run this cell again" in message


def test_the_installed_versions_are_read_from_this_environment():
    versions = colab.installed_versions()
    assert versions["numpy"] == __import__("numpy").__version__ and "ai-edge-litert" in versions


def test_drive_keeps_runs_models_and_datasets(tmp_path):
    kit, drive = tmp_path / "microkws", tmp_path / "drive" / "MyDrive" / "microkws"
    (kit / "models").mkdir(parents=True)  # empty: replaced by the link
    linked = colab.link_to_drive(kit, drive)
    assert sorted(p.name for p in linked) == ["datasets", "models", "training"]
    (kit / "training" / "run.json").write_text("{}")
    assert (drive / "training" / "run.json").is_file()
    assert colab.link_to_drive(kit, drive) == []  # running the cell again changes nothing


def test_drive_refuses_to_hide_files_made_before_it_was_asked_for(tmp_path):
    kit = tmp_path / "microkws"
    (kit / "training").mkdir(parents=True)
    (kit / "training" / "run.json").write_text("{}")
    with pytest.raises(ValueError, match="already holds files from this session: move them to"):
        colab.link_to_drive(kit, tmp_path / "drive")
    assert not (kit / "models").exists()  # nothing linked


def test_the_session_warning_says_what_vanishes_and_offers_drive():
    assert "/content" in colab.SESSION_WARNING and "DRIVE_FOLDER" in colab.SESSION_WARNING

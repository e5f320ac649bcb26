"""Google Colab: what the notebook's first cell installs there, when Colab must restart, and Drive.

Colab brings its own Jupyter, NumPy, SciPy, Matplotlib and protobuf, already loaded in the running
kernel. The kit installs only its own top-level requirements (requirements.txt, not the semester
lock of constraints.txt, which would pin every package of Colab's too), without Jupyter's stack,
so pip keeps Colab's packages wherever they satisfy the kit. When pip still replaces a package
whose modules the kernel has already imported, the old version stays in memory until the runtime
restarts: `replaced_while_loaded` names those packages.

Colab deletes /content, and with it the kit's runs, models and dataset, when the session ends;
`link_to_drive` keeps those folders in a Google Drive folder instead.
"""

import importlib.metadata
import re
from pathlib import Path

# Colab's own notebook stack: the kit never replaces it there (nbclient and nbconvert serve the
# headless run only).
COLAB_PROVIDES = {"jupyter", "ipykernel", "nbclient", "nbconvert"}
# Installed when it can be; without it the kit uses LiteRT's reference kernels and its own planner.
OPTIONAL = {"tflite-micro"}
# The kit's folders that hold what a session makes: training runs, handed-in models, datasets.
KEPT_FOLDERS = ("training", "models", "datasets")

SESSION_WARNING = (
    "Note: Colab deletes /content when the session ends, and with it your runs (training/), models "
    "(models/) and the dataset (datasets/). Download what you need (sections 9 and 12), or set "
    "DRIVE_FOLDER in this cell to keep them in your Google Drive."
)


def canonical_name(name):
    """A distribution's name as pip compares it: lower case, runs of -_. as one dash."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_lines(requirements_text):
    """The requirements of a requirements.txt, without comments and blank lines."""
    lines = [line.split("#", 1)[0].strip() for line in requirements_text.splitlines()]
    return [line for line in lines if line]


def colab_requirements(requirements_text):
    """(required, optional): the kit's requirements Colab installs, all but Colab's notebook stack.

    optional are those the kit works without (TFLite-Micro).
    """
    from packaging.requirements import Requirement

    required, optional = [], []
    for line in requirement_lines(requirements_text):
        name = canonical_name(Requirement(line).name)
        if name in COLAB_PROVIDES:
            continue
        (optional if name in OPTIONAL else required).append(line)
    return required, optional


def installed_versions():
    """{canonical distribution name: version} of every installed distribution."""
    return {canonical_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()
            if d.metadata["Name"]}


def unmet_requirements(requirements, installed):
    """The requirements (lines) that the installed versions do not satisfy on this machine.

    A requirement whose marker does not apply here (e.g. python_version < "3.11") is met.
    """
    from packaging.requirements import Requirement

    unmet = []
    for line in requirements:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        version = installed.get(canonical_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            unmet.append(line)
    return unmet


def replaced_while_loaded(before, after, loaded_modules, providers):
    """The distributions pip replaced (other version, or removed) whose modules are already imported.

    before, after: {canonical distribution name: version} around the install; loaded_modules: the
    names in sys.modules; providers: {top-level module: [distribution names]}, as
    importlib.metadata.packages_distributions() gives it.
    """
    changed = {name for name, version in before.items() if after.get(name) != version}
    loaded = {name.split(".")[0] for name in loaded_modules}
    return sorted({canonical_name(d) for module in loaded for d in providers.get(module, ())
                   if canonical_name(d) in changed})


def restart_message(replaced):
    """What to do after pip replaced packages the running kernel had loaded."""
    return (f"pip replaced {', '.join(replaced)}, which this session had already loaded. Restart the "
            "runtime now (menu Runtime > Restart session), then run this cell again (it installs nothing "
            "the second time) and go on.")


def drive_links(kit_dir, drive_folder):
    """[(folder in the kit, its place in Drive)] still to link: the kept folders not yet linked.

    Raises ValueError for a kit folder that already holds files (made before Drive was asked for),
    which a link would hide.
    """
    links = []
    for name in KEPT_FOLDERS:
        link, target = Path(kit_dir) / name, Path(drive_folder) / name
        if link.is_symlink():
            if link.resolve() != target.resolve():
                raise ValueError(f"{link} already points to {link.resolve()}, not to {target}: remove the link "
                                 "(or set DRIVE_FOLDER to that folder) and run the cell again.")
            continue
        if link.exists() and any(link.iterdir()):
            raise ValueError(f"{link} already holds files from this session: move them to {target} (or "
                             "leave DRIVE_FOLDER = None) and run the cell again.")
        links.append((link, target))
    return links


def link_to_drive(kit_dir, drive_folder):
    """Makes the kit's training/, models/ and datasets/ links to folders in drive_folder (created).

    Returns the links made.
    """
    links = drive_links(kit_dir, drive_folder)
    for link, target in links:
        target.mkdir(parents=True, exist_ok=True)
        if link.exists():
            link.rmdir()  # empty, checked above
        link.symlink_to(target, target_is_directory=True)
    return [link for link, _ in links]

"""Headless Chromium for the tests that look at a page as a person would (notebooks in
JupyterLab, reports, MQTT.js over WebSockets): Debian's ``chromium`` and ``chromedriver``
driven by Selenium, both paths given so Selenium Manager never downloads anything
(../shared/recipes/browser-notebook-test.md).

Without the tools a test skips only on a developer's machine (not root, CI unset); under CI
or as root it fails and names the install command, because ``make test`` installs them there
and a silent skip would hide a broken set-up."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

INSTALL = "sudo apt-get install -y chromium chromium-driver && pip install selenium"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--no-default-browser-check", "--disable-extensions")


def require(*tools: str, modules: tuple[str, ...] = ("selenium",), install: str = INSTALL
            ) -> None:
    """Fail (CI, root) or skip (a developer's machine) unless every tool and module is here."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    for module in modules:
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        message = f"{', '.join(missing)} missing; install with: {install}"
        if os.environ.get("CI") or os.geteuid() == 0:
            pytest.fail(message)  # make test installs them here: missing means broken
        pytest.skip(message)


def chromium(profile: Path, *extra_flags: str, timeout: float = 30):
    """A headless Chromium with a profile of its own in ``profile``; the caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    require("chromium", "chromedriver")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in (*FLAGS, *extra_flags, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")),
                              options=options)
    driver.set_page_load_timeout(timeout)
    driver.set_script_timeout(30)
    return driver

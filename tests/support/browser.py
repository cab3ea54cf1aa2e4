"""Debian's Chromium, headless, driven through its ChromeDriver by selenium: the page as a user's browser shows it."""

import contextlib
import shutil
import tempfile

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# Flags for a closed network and a machine without a screen or a GPU: no background calls home, no sandbox
# (the tests may run as root), no shared memory beyond /dev/shm's small default.
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
         "--autoplay-policy=no-user-gesture-required", "--mute-audio")


@contextlib.contextmanager
def chromium(width=1280, height=900):
    """A new headless Chromium with an empty profile, quit at the end."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for program in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(program):
            raise RuntimeError(f"{program} not found: apt-get install chromium chromium-driver (make test does)")
    with tempfile.TemporaryDirectory() as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (*FLAGS, f"--window-size={width},{height}", f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            yield driver
        finally:
            driver.quit()

"""Helpers the tests share: running the scripts, making media, a real X server and real HTTP servers.

tests/ is on sys.path while pytest runs (conftest.py and the test files sit
there with no package of their own), so the tests import these as
``support.scripts``, ``support.media``, ``support.xserver``, ``support.servers``,
``support.broker`` (a real Mosquitto), ``support.service``, ``support.image_script`` and
``support.video_script``.
"""

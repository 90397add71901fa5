"""The browser test's pytest settings: the `browser` marker (JupyterLab in headless Chromium)."""


def pytest_configure(config):
    if not any(str(line).split(":")[0].strip() == "browser" for line in config.getini("markers")):
        config.addinivalue_line("markers", "browser: drives JupyterLab in headless Chromium (tests/browser)")

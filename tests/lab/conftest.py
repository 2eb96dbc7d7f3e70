"""The lab's figures are drawn off-screen: no display, same pixels on every machine."""

import matplotlib

matplotlib.use("Agg")

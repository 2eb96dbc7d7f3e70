"""What each lesson notebook must show a student, shared by the two tests that run them:
tests/notebooks/test_notebooks_run.py (nbclient on a real kernel) and
tests/notebooks/test_notebook_browser.py (JupyterLab in headless Chromium)."""

from __future__ import annotations

from mqttsim.backends.kernel import missing_requirement

OWN_CLIENT = "11-your-own-client"
KERNEL_MISSING = missing_requirement()

# What a student reading each lesson must be able to see in its outputs.
EXPECTED = {
    "00-start-here": ["sensor 12", "Received PINGREQ from sub", "Sending SUBACK"],
    "01-packets": ["Connection Accepted", "unacceptable protocol version",
                   "identifier rejected", "bad user name or password", "not authorized",
                   "[MQTT-3.3.2-2]", "(failure)", "MQTT-4.8.0-2"],
    "02-topics": ["[MQTT-4.7.1-2]", "[MQTT-4.7.1-3]", "[MQTT-4.7.3-1]", "one-level"],
    "03-qos": ["retransmissions", "duplicate", "MQTT 3.1 (timer retry)"],
    "04-keepalive": ["PINGRESP", "silence / keepalive", "1.5"],
    "05-sessions": ["broker:queue_full", "broker:qos0_offline", "takeover", "status/pump",
                    "Publishing will of fan"],
    "06-sweeps-and-reports": ["read from the cache", "href='reports/lossy-2g-sweep.html'",
                              "href='reports/lossy-2g-run.html'", "figures"],
    "08-duplicates-and-offline": ["messages reached the phone twice", "queue_full",
                                  "qos0_offline"],
    "09-dead-connections": ["tcp_timeout", "pingresp_timeout", "never"],
    "10-retained-and-wills": ["waited (s)", "will, s after death"],
    OWN_CLIENT: (["skipping the real run"] if KERNEL_MISSING else
                 ["device->broker", "20 of 20 messages acknowledged"]),
    "12-nat-and-mqtt5": ["pingresp_timeout", "middlebox@broker", "commands lost", "expired",
                         "session_expired", "worker-2"],
}

# Run in a real browser, where these texts are checked; one notebook per lesson of issue 17
# (11 runs real TCP in network namespaces: nbclient, which also checks they are removed).
BROWSER_LESSONS = ["00-start-here", "08-duplicates-and-offline", "09-dead-connections",
                   "10-retained-and-wills", "12-nat-and-mqtt5"]

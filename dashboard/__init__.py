"""The Streamlit dashboard (`dashboard/app.py`); this package imports nothing from Streamlit."""

# The pages, in the order of the navigation: (file under views/, title, URL path). No icons: a page's
# icon becomes the favicon, which Streamlit fetches from Google's font servers (unreachable offline).
PAGES = [
    ("training.py", "Training cost", "training"),
    ("memory.py", "Attention memory", "memory"),
    ("topology.py", "Topology explorer", "topology"),
    ("timeline.py", "Pipeline timeline", "timeline"),
    ("serving.py", "Serving", "serving"),
    ("kernel_profiles.py", "Calibration", "calibration"),
]

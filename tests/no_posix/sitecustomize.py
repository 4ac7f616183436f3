"""Run by every Python process started with this folder on PYTHONPATH (`hide_posix`)."""
import hide_posix

hide_posix.hide()

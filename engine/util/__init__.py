"""Ground-floor helpers of any program that writes files: atomic writes (`atomic`),
locks that die with their process (`lock`), progress bars (`progress`)."""

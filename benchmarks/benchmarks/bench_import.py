"""Cold-start costs: ``import mapose`` in a fresh interpreter."""
import subprocess
import sys


class TimeImport:
    timeout = 120

    def timeraw_import_mapose(self):
        return "import mapose"

    def time_import_in_subprocess(self):
        subprocess.run([sys.executable, "-c", "import mapose"], check=True)

"""A locustfile for the tests: RealisticTherapist's patient create, every half second (run with
``--tags patients_only``: load_test.py's persona with its other tasks left out), so a few seconds
show what that task sends."""

from locust import constant, tag, task

from load_test import RealisticTherapist


class PatientCreator(RealisticTherapist):
    """The persona's patient create, and nothing else under the tag ``patients_only``."""

    wait_time = constant(0.5)

    @tag("patients_only")
    @task
    def create_only(self) -> None:
        self.create_patient()

"""Extra link from a task to the HTML report it wrote."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink, BaseXCom

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey


class ReportLink(BaseOperatorLink):
    """
    "Report" button on the task: the URL of the HTML report the task instance wrote.

    The operator pushes the URL to XCom under :attr:`xcom_key` when the report is written (the way
    Airflow 3 resolves extra links on the API server, which never runs operator code); this link
    reads it back for the task instance the UI asks about.
    """

    name = "Report"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        url = BaseXCom.get_value(ti_key=ti_key, key=self.xcom_key)
        return str(url) if url else ""

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
        # get_value(ti_key=...) does exactly this, but types ti_key as a protocol of settable attributes
        # that the read-only TaskInstanceKey get_link receives does not satisfy
        url = BaseXCom.get_one(
            key=self.xcom_key,
            dag_id=ti_key.dag_id,
            task_id=ti_key.task_id,
            run_id=ti_key.run_id,
            map_index=ti_key.map_index,
        )
        return str(url) if url else ""

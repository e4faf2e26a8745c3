"""Extra link from a task to the HTML report it wrote."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink, BaseXCom

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey


#: attribute the operators set on themselves to the URL of the report they wrote
REPORT_URL_ATTRIBUTE = "report_url"


class ReportLink(BaseOperatorLink):
    """
    "Report" button on the task: the URL of the HTML report the task instance wrote.

    Airflow 3 resolves extra links on the API server from the XCom under :attr:`xcom_key`, which
    the worker pushes when the task instance finishes by calling :meth:`get_link` on the operator
    that ran; the operator keeps the URL of the report it wrote as ``report_url``, so the link is
    per task instance (per map index) and nothing is read back from XCom. A deferring task has no
    report yet: it gets an empty link, without the "XCom not found" error a read would log on every
    deferral. An operator that pushes the URL to XCom itself (without ``report_url``) is read back.
    """

    name = "Report"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        url = getattr(operator, REPORT_URL_ATTRIBUTE, None)
        if url:
            return str(url)
        if getattr(operator, "deferring", False):
            return ""
        # get_value(ti_key=...) does exactly this, but types ti_key as a protocol of settable
        # attributes that the read-only TaskInstanceKey get_link receives does not satisfy
        value = BaseXCom.get_one(
            key=self.xcom_key,
            dag_id=ti_key.dag_id,
            task_id=ti_key.task_id,
            run_id=ti_key.run_id,
            map_index=ti_key.map_index,
        )
        return str(value) if value else ""

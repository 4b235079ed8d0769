"""RunAccess: who may see, submit and cancel which run.

- A **personal** run (no project) is its owner's alone: anyone else gets 404.
- A **project** run is decided by the shared policy (:mod:`vre_common.policy`), asked of the
  gateway with the caller's own token: ``runs.read`` to see it, its logs and outputs;
  ``runs.submit`` to start one; ``runs.cancel`` to cancel or delete one. A private project's
  run answers 404 to outsiders (as an unknown run id would), 403 to a member whose role is
  too weak.
"""

from __future__ import annotations

from vre_common.auth import Principal
from vre_common.policy import Action, Policy, ProjectAccess, ProjectNotFoundError
from vre_workflows.errors import ProjectsUnavailableError, RunNotFoundError


class RunAccess:
    """The authorization of runs by the gateway's policy (in-process or over HTTP; None:
    project runs are refused)."""

    def __init__(self, policy: Policy | None) -> None:
        self.policy = policy

    async def project(
        self, user: Principal, token: str | None, project: str, action: Action
    ) -> ProjectAccess:
        """The project's access if ``user`` may do ``action`` in it; raise otherwise."""
        if self.policy is None:
            raise ProjectsUnavailableError(
                "this workflows service has no gateway to ask about projects (gateway_url)"
            )
        return await self.policy.require(user, action, project=project, token=token)

    async def require(
        self,
        user: Principal,
        token: str | None,
        run_id: str,
        *,
        owner: str,
        project: str | None,
        action: Action,
    ) -> None:
        """Allow ``action`` on a run whose owner key and project are given; raise otherwise."""
        if project is None:
            if owner != user.key:
                raise RunNotFoundError(f"no run {run_id}")
            return
        try:
            await self.project(user, token, project, action)
        except ProjectNotFoundError:
            # Do not tell an outsider which (private) project a run id belongs to.
            raise RunNotFoundError(f"no run {run_id}") from None

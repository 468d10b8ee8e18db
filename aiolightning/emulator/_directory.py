"""Users, orgs, teamspaces (projects) and memberships: who the caller is and what they belong to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._call import Call, RouteTable
from ._errors import ApiError
from ._validation import filled

if TYPE_CHECKING:
    from ._state import Org, Project, State, User

__all__ = ["routes"]

routes = RouteTable()


# -- shapes ------------------------------------------------------------------------------


def user_json(state: State, u: User) -> dict[str, Any]:
    return filled(
        "V1GetUserResponse",
        {
            "id": u.id,
            "username": u.username,
            "email": u.email,
            "firstName": u.first_name,
            "lastName": u.last_name,
            "features": {},
            "status": {"verified": True, "completedProjectOnboarding": True},
            "organizations": [org_json(state, o) for o in state.orgs.values() if u.id in o.members],
            "apiKey": "",
        },
    )


def search_user_json(state: State, u: User) -> dict[str, Any]:
    return filled(
        "V1ExternalSearchUser",
        {
            "id": u.id,
            "username": u.username,
            "email": u.email,
            "firstName": u.first_name,
            "lastName": u.last_name,
            "organization": "",
            "pictureUrl": "",
            "projectMemberships": [p.id for p in state.projects.values() if u.id in p.members],
        },
    )


def org_json(state: State, o: Org) -> dict[str, Any]:
    return filled(
        "V1Organization",
        {
            "id": o.id,
            "name": o.name,
            "displayName": o.display_name,
            "preferredCluster": o.preferred_cluster,
            "createdAt": state.iso(o.created),
            "updatedAt": state.iso(o.created),
            "creatorId": next(iter(sorted(o.members)), ""),
            "defaultProjectId": "",
            "isPersonalOrg": False,
            "description": "",
            "email": "",
            "domain": "",
            "autoJoinDomains": [],
            "startStudiosOnSpotInstance": False,
        },
    )


def _layout() -> list[dict[str, Any]]:
    return [
        {"slug": s, "isEnabled": True}
        for s in (
            "studio",
            "drive",
            "jobs",
            "deployments",
            "pipelines",
            "models",
            "containers",
            "settings",
        )
    ]


def _project_fields(state: State, p: Project) -> dict[str, Any]:
    """The fields a teamspace and a membership in it both carry, in the service's order."""
    return {
        "name": p.name,
        "displayName": p.display_name,
        "description": "",
        "ownerId": p.owner_id,
        "ownerType": p.owner_type,
        "creatorId": p.creator_id,
        "createdAt": state.iso(p.created),
        "updatedAt": state.iso(p.created),
    }


def project_json(state: State, p: Project) -> dict[str, Any]:
    return filled(
        "V1Project",
        {
            "id": p.id,
            **_project_fields(state, p),
            "isDefault": p.owner_type == "user" and p.creator_id == p.owner_id,
            "layoutConfig": _layout(),
            "projectSettings": filled(
                "V1ProjectSettings",
                {
                    "preferredCluster": p.cluster_ids[0] if p.cluster_ids else "",
                    "startStudioOnSpotInstance": False,
                    "defaultMachineType": "cpu-4",
                    "customTags": [],
                },
            ),
            "currentStorageBytes": "0",
            "freeStorageBytes": "0",
            "totalSizeUploadsBytes": "0",
            "numberOfFilesUploads": "0",
        },
    )


def membership_json(state: State, p: Project, user: User) -> dict[str, Any]:
    return filled(
        "V1Membership",
        {
            "projectId": p.id,
            "userId": user.id,
            **_project_fields(state, p),
            "isDefault": p.owner_type == "user" and p.owner_id == user.id,
            "roles": [],
            "balance": 0,
            "jobCount": "0",
            "membershipCount": str(len(p.members)),
            "datastoreCount": "0",
            "currentStorageBytes": "0",
            "freeStorageBytes": "0",
        },
    )


# -- auth / users --------------------------------------------------------------------------


@routes.route("GET", "/v1/auth/whoami")
async def whoami(call: Call) -> Any:
    u = call.user
    return filled(
        "V1WhoamiResponse",
        {
            "userId": u.id,
            "username": u.username,
            "email": u.email,
            "authType": "AUTH_TYPE_USER",
            "orgId": "",
            "projectId": "",
            "roleId": "",
            "apiKeyId": "",
        },
    )


@routes.route("GET", "/v1/auth/user")
async def get_user(call: Call) -> Any:
    return user_json(call.state, call.user)


@routes.route("GET", "/v1/users/search")
async def search_users(call: Call) -> Any:
    q = call.q("query").lower()
    users = [
        u
        for u in call.state.users.values()
        if not q or q in u.username.lower() or q == u.id or q in u.email.lower()
    ]
    return {
        "users": [search_user_json(call.state, u) for u in users],
        "nextPageToken": "",
        "previousPageToken": "",
        "totalSize": str(len(users)),
    }


# -- orgs ----------------------------------------------------------------------------------


@routes.route("GET", "/v1/orgs")
async def list_orgs(call: Call) -> Any:
    st = call.state
    return {
        "organizations": [org_json(st, o) for o in st.orgs.values() if call.user.id in o.members]
    }


@routes.route("GET", "/v1/orgs/{id}")
async def get_org(call: Call) -> Any:
    st = call.state
    org_id = call.params["id"]
    name = call.q("name")
    for o in st.orgs.values():
        if (org_id and o.id == org_id) or (not org_id and name and o.name == name):
            if call.user.id not in o.members:
                raise ApiError(403, f"not a member of organization {o.name}")
            return org_json(st, o)
    raise ApiError(404, f"organization {org_id or name!r} not found")


# -- projects ------------------------------------------------------------------------------


@routes.route("GET", "/v1/memberships")
async def list_memberships(call: Call) -> Any:
    st = call.state
    org_id = call.q("organizationId")
    out = []
    for p in st.projects.values():
        if call.user.id not in p.members:
            continue
        if org_id and not (p.owner_type == "organization" and p.owner_id == org_id):
            continue
        out.append(membership_json(st, p, call.user))
    return {"memberships": out}


@routes.route("GET", "/v1/projects/{id}")
async def get_project(call: Call) -> Any:
    return project_json(call.state, call.state.project_for(call.params["id"], call.user))


@routes.route("POST", "/v1/projects", body="V1CreateProjectRequest")
async def create_project(call: Call) -> Any:
    st = call.state
    name = str(call.body.get("name") or "")
    if not name:
        raise ApiError(400, "name is required")
    org_id = str(call.body.get("organizationId") or "")
    if org_id:
        org = st.orgs.get(org_id)
        if org is None:
            raise ApiError(404, f"organization {org_id} not found")
        if call.user.id not in org.members:
            raise ApiError(403, f"not a member of organization {org.name}")
        owner_id, owner_type = org_id, "organization"
    else:
        owner_id, owner_type = call.user.id, "user"
    for p in st.projects.values():
        if p.owner_id == owner_id and p.name == name:
            raise ApiError(409, f"teamspace {name} already exists")
    p = st.add_project(name, owner_id, owner_type, call.user)
    if call.body.get("displayName"):
        p.display_name = str(call.body["displayName"])
    st.counters.incr(f"creates:teamspace:{name}")
    return project_json(st, p)


@routes.route("GET", "/v1/projects/{projectId}/memberships")
async def list_project_memberships(call: Call) -> Any:
    st = call.state
    p = st.project_for(call.params["projectId"], call.user)
    out = []
    for uid in sorted(p.members):
        u = st.users[uid]
        m = membership_json(st, p, u)
        m["username"] = u.username
        m["email"] = u.email
        out.append(m)
    return {"memberships": out, "nextPageToken": "", "previousPageToken": ""}

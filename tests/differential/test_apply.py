"""Server-side apply on both servers: managedFields (FieldsV1 shape, Update entries on create,
subresource entries), ownership, conflicts with FieldManagerConflict causes, force, list-type
map/set merge, create-on-apply, apply on status, option errors, and an SSA conflict storm."""

from __future__ import annotations

from typing import Any

from tests.differential.conftest import GROUP, answer, ok, widget
from tests.kube import Client

APPLY = "application/apply-patch+yaml"


def apply(api: Client, path: str, body: dict[str, Any], manager: str,
          force: bool = False) -> Any:
    query = f"?fieldManager={manager}" + ("&force=true" if force else "")
    return api.patch(path + query, body, content_type=APPLY)


def fields(obj: dict[str, Any]) -> dict[tuple[str, str, str], Any]:
    return {(m["manager"], m["operation"], m.get("subresource", "")): m["fieldsV1"]
            for m in obj["metadata"]["managedFields"]}


def test_update_entries_own_every_node_they_add(api: Client, widgets: str) -> None:
    body = widget("w", replicas=2, ports=[{"name": "x", "port": 1}], tags=["a"],
                  config={"k": "v"}, extra={"q": {"r": 1}})
    body["metadata"]["labels"] = {"a": "b"}
    created = ok(api.post(widgets, body), 201)
    assert fields(created) == {("python-urllib3", "Update", ""): {
        "f:metadata": {"f:labels": {".": {}, "f:a": {}}},
        "f:spec": {".": {}, "f:config": {".": {}, "f:k": {}},
                   "f:extra": {".": {}, "f:q": {".": {}, "f:r": {}}}, "f:mode": {},
                   "f:ports": {".": {}, 'k:{"name":"x"}': {".": {}, "f:name": {}, "f:port": {}}},
                   "f:replicas": {}, "f:tags": {".": {}, 'v:"a"': {}}}}}
    patched = ok(api.patch(f"{widgets}/w?fieldManager=m2", {"spec": {"args": ["a"]}}))
    assert fields(patched)[("m2", "Update", "")] == {"f:spec": {"f:args": {}}}


def test_apply_creates_and_records_members_only(api: Client, widgets: str) -> None:
    body = widget("w", replicas=2, ports=[{"name": "x", "port": 1}], tags=["a"],
                  config={"k": "v"}, extra={"q": {"r": 1}})
    body["metadata"]["labels"] = {"a": "b"}
    created = ok(apply(api, f"{widgets}/w", body, "ap"), 201)
    assert created["spec"]["mode"] == "auto"  # defaulted
    assert fields(created) == {("ap", "Apply", ""): {
        "f:metadata": {"f:labels": {"f:a": {}}},
        "f:spec": {"f:config": {"f:k": {}}, "f:extra": {"f:q": {".": {}, "f:r": {}}},
                   "f:ports": {'k:{"name":"x"}': {".": {}, "f:name": {}, "f:port": {}}},
                   "f:replicas": {}, "f:tags": {'v:"a"': {}}}}}
    assert created["metadata"]["generation"] == 1


def test_conflict_then_force_merges_lists_by_type(api: Client, widgets: str) -> None:
    ok(apply(api, f"{widgets}/w", widget("w", replicas=2, ports=[{"name": "x", "port": 1}],
                                          tags=["t1"], args=["a"]), "a"), 201)
    second = widget("w", replicas=3, ports=[{"name": "y", "port": 2}], tags=["t2"])
    assert answer(apply(api, f"{widgets}/w", second, "b")) == {
        "code": 409, "status": "Failure", "reason": "Conflict",
        "message": 'Apply failed with 1 conflict: conflict with "a": .spec.replicas',
        "details": {"causes": [{"reason": "FieldManagerConflict",
                                "message": 'conflict with "a"', "field": ".spec.replicas"}]}}
    forced = ok(apply(api, f"{widgets}/w", second, "b", force=True))
    assert forced["spec"] == {"replicas": 3, "mode": "auto", "args": ["a"],
                              "ports": [{"name": "x", "port": 1}, {"name": "y", "port": 2}],
                              "tags": ["t1", "t2"]}
    assert fields(forced) == {
        ("a", "Apply", ""): {"f:spec": {
            "f:args": {}, "f:ports": {'k:{"name":"x"}': {".": {}, "f:name": {}, "f:port": {}}},
            "f:tags": {'v:"t1"': {}}}},
        ("b", "Apply", ""): {"f:spec": {
            "f:ports": {'k:{"name":"y"}': {".": {}, "f:name": {}, "f:port": {}}},
            "f:replicas": {}, "f:tags": {'v:"t2"': {}}}}}


def test_conflict_with_an_update_manager(api: Client, widgets: str) -> None:
    ok(api.post(widgets + "?fieldManager=editor", widget("w", replicas=1, size="s")), 201)
    got = answer(apply(api, f"{widgets}/w", widget("w", replicas=4, size="l"), "ap"))
    assert got == {
        "code": 409, "status": "Failure", "reason": "Conflict",
        "message": 'Apply failed with 2 conflicts: conflicts with "editor" using '
                   f'{GROUP}/v1:\n- .spec.replicas\n- .spec.size',
        "details": {"causes": [
            {"reason": "FieldManagerConflict", "message": 'conflict with "editor" using '
             f'{GROUP}/v1', "field": ".spec.replicas"},
            {"reason": "FieldManagerConflict", "message": 'conflict with "editor" using '
             f'{GROUP}/v1', "field": ".spec.size"}]}}


def test_dropping_a_field_from_the_applied_set_removes_it(api: Client, widgets: str) -> None:
    ok(apply(api, f"{widgets}/w", widget("w", replicas=2, size="s"), "ap"), 201)
    after = ok(apply(api, f"{widgets}/w", widget("w", replicas=2), "ap"))
    assert after["spec"] == {"replicas": 2, "mode": "auto"}
    assert after["metadata"]["generation"] == 2


def test_apply_on_status(api: Client, widgets: str) -> None:
    ok(apply(api, f"{widgets}/w", widget("w", replicas=1), "ap"), 201)
    status = {"apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": {"name": "w"},
              "status": {"phase": "Up"}}
    got = ok(apply(api, f"{widgets}/w/status", status, "st"))
    assert got["status"] == {"phase": "Up"} and got["metadata"]["generation"] == 1
    assert fields(got)[("st", "Apply", "status")] == {"f:status": {"f:phase": {}}}


def test_apply_without_field_manager(api: Client, widgets: str) -> None:
    assert answer(api.patch(f"{widgets}/w", widget("w"), content_type=APPLY)) == {
        "code": 422, "status": "Failure", "reason": "Invalid",
        "message": 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is '
                   "required for apply patch",
        "details": {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [{
            "reason": "FieldValueRequired", "message": "Required value: is required for apply "
            "patch", "field": "fieldManager"}]}}


def test_force_on_a_non_apply_patch(api: Client, widgets: str) -> None:
    ok(api.post(widgets, widget("w")), 201)
    assert answer(api.patch(f"{widgets}/w?force=true", {"spec": {}})) == {
        "code": 422, "status": "Failure", "reason": "Invalid",
        "message": 'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be '
                   "specified for non-apply patch",
        "details": {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [{
            "reason": "FieldValueForbidden",
            "message": "Forbidden: may not be specified for non-apply patch",
            "field": "force"}]}}


def test_apply_name_must_match_the_url(api: Client, widgets: str) -> None:
    assert answer(apply(api, f"{widgets}/w", widget("other"), "ap")) == {
        "code": 400, "status": "Failure", "reason": "BadRequest",
        "message": "the name of the object (other) does not match the name on the URL (w)"}


def test_conflict_storm_between_two_managers(api: Client, widgets: str) -> None:
    """Two managers fight over spec.replicas: each non-forced apply by the loser conflicts,
    each forced one takes the field; the answers alternate the same way on both servers."""
    ok(apply(api, f"{widgets}/w", widget("w", replicas=0), "red"), 201)
    outcomes = []
    for round_ in range(1, 7):
        manager, other = ("blue", "red") if round_ % 2 else ("red", "blue")
        body = widget("w", replicas=round_)
        refused = apply(api, f"{widgets}/w", body, manager)
        outcomes.append((manager, refused.status,
                         refused.json()["details"]["causes"][0]["message"]
                         if refused.status == 409 else ""))
        taken = ok(apply(api, f"{widgets}/w", body, manager, force=True))
        owners = {k[0] for k, v in fields(taken).items() if "f:replicas" in v.get("f:spec", {})}
        outcomes.append((manager, 200, ",".join(sorted(owners))))
        assert taken["spec"]["replicas"] == round_
        assert other not in owners
    assert outcomes == [
        ("blue", 409, 'conflict with "red"'), ("blue", 200, "blue"),
        ("red", 409, 'conflict with "blue"'), ("red", 200, "red"),
    ] * 3

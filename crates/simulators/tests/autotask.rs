//! The Autotask simulator driven over HTTP (design note `autotask-api.md` §7).

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use simulators::autotask::{self, Config};
use simulators::common::SimHandle;

const ACME: i64 = 29_683_616;

struct Sim {
    h: SimHandle,
    c: Client,
}

impl Sim {
    async fn start() -> Self {
        Self::with(Config::default()).await
    }

    async fn with(cfg: Config) -> Self {
        let h = autotask::start("127.0.0.1:0".parse().unwrap(), cfg).await.unwrap();
        Self { h, c: Client::new() }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/ATServicesRest/V1.0/{path}", self.h.base_url())
    }

    fn authed(&self, m: Method, url: &str) -> reqwest::RequestBuilder {
        self.c
            .request(m, url)
            .header("UserName", "api@sim.local")
            .header("Secret", "sim-secret")
            .header("ApiIntegrationCode", "SIMINTEGRATIONCODE000000000")
    }

    async fn call(&self, m: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut r = self.authed(m, &self.url(path));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        let r = self.c.post(format!("{}/_sim/{path}", self.h.base_url())).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 200, "control {path}");
        r.json().await.unwrap()
    }

    async fn control_get(&self, path: &str) -> Value {
        self.c.get(format!("{}/_sim/{path}", self.h.base_url())).send().await.unwrap().json().await.unwrap()
    }

    async fn create_ok(&self, body: Value) -> i64 {
        let (s, v) = self.post("Tickets", body).await;
        assert_eq!(s, 200, "{v}");
        v["itemId"].as_i64().unwrap()
    }
}

fn ticket() -> Value {
    json!({"companyID":ACME,"title":"Backup failed on PC-1","description":"Job 42 failed","status":1,"priority":2,
           "queueID":29683482,"dueDateTime":"2030-01-15T17:00:00Z","source":8,"issueType":10,"subIssueType":101,
           "billingCodeID":29682801,"configurationItemID":1583,"externalID":"rmm-alert-123",
           "userDefinedFields":[{"name":"External Reference","value":"X-1"}]})
}

fn with(mut base: Value, key: &str, v: Value) -> Value {
    if v.is_null() {
        base.as_object_mut().unwrap().remove(key);
    } else {
        base[key] = v;
    }
    base
}

fn err(v: &Value) -> &str {
    v["errors"][0].as_str().unwrap_or_else(|| panic!("no errors[0] in {v}"))
}

#[tokio::test]
async fn discovery_without_credentials() {
    let s = Sim::start().await;
    let base = s.h.base_url();
    let v: Value =
        s.c.get(format!("{base}/atservicesrest/versioninformation")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v, json!({"apiVersions":["1.0"]}));
    let r = s.c.get(format!("{base}/atservicesrest/v1.0/zoneInformation?user=api%40sim.local")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["url"], format!("{base}/ATServicesRest/"));
    assert_eq!(v["webUrl"], format!("{base}/"));
    assert!(v["zoneName"].is_string() && v["ci"].is_i64());
    for q in ["?user=nobody%40sim.local", ""] {
        let r = s.c.get(format!("{base}/ATServicesRest/V1.0/ZoneInformation{q}")).send().await.unwrap();
        assert_eq!(r.status(), 500);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v, json!({"errors":["Zone information could not be determined"]}));
    }
    // the zone url works as the REST root, lower-case paths too
    let r = s.authed(Method::GET, &format!("{base}/atservicesrest/v1.0/companies/0")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["item"]["companyName"], "Mock MSP");
}

#[tokio::test]
async fn auth_failures() {
    let s = Sim::start().await;
    let url = s.url("Companies/0");
    let denied = json!({"Message":"Authorization has been denied for this request."});
    let r = s.c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap(), denied);
    let r =
        s.c.get(&url)
            .header("UserName", "api@sim.local")
            .header("Secret", "wrong")
            .header("ApiIntegrationCode", "SIMINTEGRATIONCODE000000000")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 401);
    let r =
        s.c.get(&url)
            .header("UserName", "other@sim.local")
            .header("Secret", "sim-secret")
            .header("ApiIntegrationCode", "SIMINTEGRATIONCODE000000000")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap(), denied);
    let r =
        s.c.get(&url)
            .header("username", "api@sim.local")
            .header("secret", "sim-secret")
            .header("apiintegrationcode", "WRONGCODE")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"errors":["IntegrationCode is invalid."]}));
    // impersonation
    let r = s.authed(Method::GET, &url).header("ImpersonationResourceId", "42").send().await.unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"errors":["Impersonation resource is invalid."]}));
    let r = s
        .authed(Method::POST, &s.url("Tickets"))
        .header("ImpersonationResourceId", "29682886")
        .json(&ticket())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.json::<Value>().await.unwrap()["itemId"].as_i64().unwrap();
    let (_, v) = s.call(Method::GET, &format!("Tickets/{id}"), None).await;
    assert_eq!(v["item"]["creatorResourceID"], 29_682_886);
    assert_eq!(v["item"]["impersonatorCreatorResourceID"], 29_682_885);
}

#[tokio::test]
async fn custom_credentials() {
    let cfg = Config { user: "u@x".into(), secret: "s".into(), integration_code: "C".into(), ..Config::default() };
    let s = Sim::with(cfg).await;
    let r = s.authed(Method::GET, &s.url("Companies/0")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r =
        s.c.get(s.url("Companies/0"))
            .header("UserName", "u@x")
            .header("Secret", "s")
            .header("ApiIntegrationCode", "C")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn create_read_and_complete_ticket() {
    let s = Sim::start().await;
    let id = s.create_ok(ticket()).await;
    assert_eq!(id, 128_926);
    let id2 = s.create_ok(with(ticket(), "externalID", json!("other"))).await;
    assert_eq!(id2, id + 1);
    let (st, v) = s.call(Method::GET, &format!("Tickets/{id}"), None).await;
    assert_eq!(st, 200);
    let t = &v["item"];
    let today = chrono::Utc::now().format("%Y%m%d").to_string();
    assert_eq!(t["ticketNumber"], format!("T{today}.0001"));
    assert_eq!(t["status"], 1);
    assert_eq!(t["ticketCategory"], 3);
    assert_eq!(t["ticketType"], 1);
    assert_eq!(t["creatorResourceID"], 29_682_885);
    assert_eq!(t["dueDateTime"], "2030-01-15T17:00:00.000Z");
    assert!(t["createDate"].as_str().unwrap().ends_with('Z'));
    assert!(t["completedDate"].is_null());
    assert_eq!(t["userDefinedFields"], json!([{"name":"External Reference","value":"X-1"}]));
    let (_, v2) = s.call(Method::GET, &format!("Tickets/{id2}"), None).await;
    assert_eq!(v2["item"]["ticketNumber"], format!("T{today}.0002"));

    // PATCH to Complete
    let (st, v) = s
        .call(Method::PATCH, "Tickets", Some(json!({"id":id,"status":5,"resolution":"Backup succeeded on retry."})))
        .await;
    assert_eq!((st, v), (StatusCode::OK, json!({"itemId": id})));
    let (_, v) = s.call(Method::GET, &format!("Tickets/{id}"), None).await;
    let t = &v["item"];
    assert_eq!(t["status"], 5);
    assert_eq!(t["resolution"], "Backup succeeded on retry.");
    assert_eq!(t["title"], "Backup failed on PC-1", "unsupplied fields unchanged");
    assert!(t["completedDate"].is_string());
    assert!(t["resolvedDateTime"].is_string());
    assert_eq!(t["completedByResourceID"], 29_682_885);
    // reopening clears completedDate
    s.call(Method::PATCH, "Tickets", Some(json!({"id":id,"status":8}))).await;
    let (_, v) = s.call(Method::GET, &format!("Tickets/{id}"), None).await;
    assert!(v["item"]["completedDate"].is_null());
    // PATCH errors
    let (st, v) = s.call(Method::PATCH, "Tickets", Some(json!({"status":5}))).await;
    assert_eq!((st.as_u16(), err(&v)), (500, "id is required."));
    let (_, v) = s.call(Method::PATCH, "Tickets", Some(json!({"id":999999,"status":5}))).await;
    assert_eq!(err(&v), "Ticket with id 999999 not found.");
    let (_, v) = s.call(Method::PATCH, "Tickets", Some(json!({"id":id,"priority":99}))).await;
    assert_eq!(err(&v), "Value does not reference an existing entity for priority . ");
    let (_, v) = s.call(Method::PATCH, "Tickets", Some(json!({"id":id,"title":"x".repeat(256)}))).await;
    assert_eq!(err(&v), "title exceeds the maximum length of 255.");
}

/// The ticket lifecycle's updates: reopen a completed ticket (status only), raise priority and
/// due, repeat them; what the real service refuses is refused with its error shape.
#[tokio::test]
async fn patch_reopens_escalates_and_repeats() {
    let s = Sim::start().await;
    let id = s.create_ok(ticket()).await;
    let get = |id: i64| {
        let s = &s;
        async move { s.call(Method::GET, &format!("Tickets/{id}"), None).await.1["item"].clone() }
    };
    s.call(Method::PATCH, "Tickets", Some(json!({"id":id,"status":5}))).await;
    assert!(get(id).await["completedDate"].is_string());
    s.c.post(format!("{}/_sim/clock", s.h.base_url())).json(&json!({"advance_secs": 60})).send().await.unwrap();

    // reopen: status back to New; Autotask clears the completion stamps itself
    let (st, v) = s.call(Method::PATCH, "Tickets", Some(json!({"id":id,"status":1}))).await;
    assert_eq!((st, v), (StatusCode::OK, json!({"itemId": id})));
    let t = get(id).await;
    assert_eq!(t["status"], 1);
    assert!(t["completedDate"].is_null());
    assert!(t["completedByResourceID"].is_null());
    assert_eq!(t["priority"], 2, "unsupplied fields unchanged");

    // escalate: priority and due, twice (absolute values: the repeat changes nothing)
    let up = json!({"id":id,"priority":4,"dueDateTime":"2030-01-15T21:00:00Z"});
    for _ in 0..2 {
        let (st, v) = s.call(Method::PATCH, "Tickets", Some(up.clone())).await;
        assert_eq!((st, v), (StatusCode::OK, json!({"itemId": id})));
        let t = get(id).await;
        assert_eq!((t["priority"].clone(), t["dueDateTime"].clone()), (json!(4), json!("2030-01-15T21:00:00.000Z")));
        assert_eq!(t["status"], 1);
        assert!(t["completedDate"].is_null());
    }

    // refusals: unknown and inactive picklist values, a bad date, an unknown id; nothing applied
    let (st, v) = s.call(Method::PATCH, "Tickets", Some(json!({"id":id,"status":13,"priority":3}))).await;
    assert_eq!((st.as_u16(), err(&v)), (500, "Value does not reference an existing entity for status . "));
    let (_, v) = s.call(Method::PATCH, "Tickets", Some(json!({"id":id,"priority":77}))).await;
    assert_eq!(err(&v), "Value does not reference an existing entity for priority . ");
    let (_, v) = s.call(Method::PATCH, "Tickets", Some(json!({"id":id,"dueDateTime":"soon"}))).await;
    assert_eq!(err(&v), "dueDateTime: 'soon' is not a valid date/time value.");
    let (st, v) = s.call(Method::PATCH, "Tickets", Some(json!({"id":987654321,"status":1}))).await;
    assert_eq!((st.as_u16(), err(&v)), (500, "Ticket with id 987654321 not found."));
    assert_eq!(get(id).await["priority"], 4, "a refused PATCH changes nothing");
    // read-only fields are ignored, not written [I]
    s.call(Method::PATCH, "Tickets", Some(json!({"id":id,"completedDate":"2030-01-01T00:00:00Z"}))).await;
    assert!(get(id).await["completedDate"].is_null());
    // and the update is what /_sim/tickets shows
    let all = s.control_get("tickets").await;
    let row = all.as_array().unwrap().iter().find(|t| t["id"] == id).unwrap();
    assert_eq!((row["status"].clone(), row["priority"].clone()), (json!(1), json!(4)));
}

#[tokio::test]
async fn create_validation_steps_in_order() {
    let s = Sim::start().await;
    let cases: Vec<(Value, &str)> = vec![
        // 2
        (with(ticket(), "companyID", Value::Null), "companyID is required.; on record number [0]."),
        (
            with(ticket(), "companyID", json!(29683617)),
            "Reference value on field: companyID of type: Company does not exist or is invalid.",
        ),
        (
            with(with(ticket(), "companyID", json!(1)), "title", Value::Null),
            "Reference value on field: companyID of type: Company does not exist or is invalid.",
        ),
        // 3
        (with(ticket(), "title", Value::Null), "title is required.; on record number [0]."),
        (with(ticket(), "status", Value::Null), "status is required.; on record number [0]."),
        (with(ticket(), "priority", Value::Null), "priority is required.; on record number [0]."),
        // 4
        (with(ticket(), "status", json!(13)), "Value does not reference an existing entity for status . "),
        (with(ticket(), "priority", json!(9)), "Value does not reference an existing entity for priority . "),
        (with(ticket(), "queueID", json!(29683483)), "Value does not reference an existing entity for queueID . "),
        (with(ticket(), "source", json!(3)), "Value does not reference an existing entity for source . "),
        (with(ticket(), "issueType", json!(12)), "Value does not reference an existing entity for issueType . "),
        (with(ticket(), "subIssueType", json!(999)), "Value does not reference an existing entity for subIssueType . "),
        (with(ticket(), "ticketType", json!(6)), "Value does not reference an existing entity for ticketType . "),
        (
            with(ticket(), "ticketCategory", json!(2)),
            "Value does not reference an existing entity for ticketCategory . ",
        ),
        // 5
        (with(ticket(), "subIssueType", json!(111)), "subIssueType does not belong to issueType."),
        (with(ticket(), "issueType", Value::Null), "subIssueType does not belong to issueType."),
        // 6
        (
            with(ticket(), "assignedResourceID", json!(29682885)),
            "When assigning a Resource, you must assign both a assignedResourceID and assignedResourceRoleID.",
        ),
        (
            with(ticket(), "assignedResourceRoleID", json!(7)),
            "When assigning a Resource, you must assign both a assignedResourceID and assignedResourceRoleID.",
        ),
        // 7
        (
            with(ticket(), "queueID", Value::Null),
            "Data violation: assignedResourceID, assignedResourceRoleID, and queueID cannot all be empty.",
        ),
        // 8
        (with(ticket(), "dueDateTime", Value::Null), "dueDateTime is required.; on record number [0]."),
        // 9
        (with(ticket(), "title", json!("t".repeat(256))), "title exceeds the maximum length of 255."),
        (with(ticket(), "description", json!("d".repeat(8001))), "description exceeds the maximum length of 8000."),
        (with(ticket(), "externalID", json!("e".repeat(51))), "externalID exceeds the maximum length of 50."),
        // 10
        (
            with(ticket(), "billingCodeID", json!(29682802)),
            "Reference value on field: billingCodeID of type: BillingCode does not exist or is invalid.",
        ),
        (
            with(ticket(), "billingCodeID", json!(29682803)),
            "Reference value on field: billingCodeID of type: BillingCode does not exist or is invalid.",
        ),
        (
            with(ticket(), "companyID", json!(0)),
            "Reference value on field: configurationItemID of type: ConfigurationItem does not exist or is invalid.",
        ),
    ];
    for (body, expected) in cases {
        let (st, v) = s.post("Tickets", body.clone()).await;
        assert_eq!(st, 500, "{body}");
        assert_eq!(err(&v), expected, "{body}");
    }
    // 1: malformed JSON and an id
    let r = s.authed(Method::POST, &s.url("Tickets")).body("{not json").send().await.unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"errors":["Invalid JSON."]}));
    let (st, _) = s.post("Tickets", with(ticket(), "id", json!(5))).await;
    assert_eq!(st, 500);
    // nothing was created; resource + role instead of a queue is fine
    assert_eq!(s.control_get("tickets").await, json!([]));
    let ok = with(
        with(with(ticket(), "queueID", Value::Null), "assignedResourceID", json!(1)),
        "assignedResourceRoleID",
        json!(2),
    );
    s.create_ok(ok).await;
    // category 100 supplies priority, queue and due date
    let id = s.create_ok(json!({"companyID":ACME,"title":"Monitoring","status":1,"ticketCategory":100})).await;
    let (_, v) = s.call(Method::GET, &format!("Tickets/{id}"), None).await;
    assert_eq!(v["item"]["priority"], 1);
    assert_eq!(v["item"]["queueID"], 8);
    assert!(v["item"]["dueDateTime"].is_string());
    // unknown UDF
    let (_, v) = s.post("Tickets", with(ticket(), "userDefinedFields", json!([{"name":"Nope","value":"1"}]))).await;
    assert_eq!(err(&v), "User-defined field Nope does not exist.");
}

#[tokio::test]
async fn read_not_found_delete_and_switch() {
    let s = Sim::start().await;
    let (st, v) = s.call(Method::GET, "Tickets/999999", None).await;
    assert_eq!((st.as_u16(), v), (404, Value::Null));
    let id = s.create_ok(ticket()).await;
    let (st, v) = s.call(Method::DELETE, &format!("Tickets/{id}"), None).await;
    assert_eq!(st, 405);
    assert_eq!(v, json!({"Message":"The requested resource does not support http method 'DELETE'."}));
    let limits = s.control("limits", json!({"missing_item_as_null": true})).await;
    assert_eq!(limits["missing_item_as_null"], true);
    let (st, v) = s.call(Method::GET, "Tickets/999999", None).await;
    assert_eq!((st.as_u16(), v), (200, json!({"item": null})));
}

#[tokio::test]
async fn query_filters_count_and_projection() {
    let s = Sim::start().await;
    let a = s.create_ok(ticket()).await;
    let b = s.create_ok(with(with(ticket(), "externalID", json!("rmm-alert-456")), "priority", json!(4))).await;
    let c = s.create_ok(with(with(ticket(), "externalID", json!("other-789")), "title", json!("Disk full"))).await;
    s.call(Method::PATCH, "Tickets", Some(json!({"id":c,"status":5}))).await;

    let q = |filter: Value| json!({"filter": filter});
    let ids = |v: &Value| v["items"].as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()).collect::<Vec<_>>();
    let cases: Vec<(Value, Vec<i64>)> = vec![
        (json!([{"op":"eq","field":"externalID","value":"RMM-ALERT-123"}]), vec![a]),
        (json!([{"op":"noteq","field":"status","value":5}]), vec![a, b]),
        (json!([{"op":"gt","field":"id","value":a}]), vec![b, c]),
        (json!([{"op":"gte","field":"id","value":b}]), vec![b, c]),
        (json!([{"op":"lt","field":"id","value":b}]), vec![a]),
        (json!([{"op":"lte","field":"id","value":b}]), vec![a, b]),
        (json!([{"op":"beginsWith","field":"externalID","value":"rmm-"}]), vec![a, b]),
        (json!([{"op":"endsWith","field":"externalID","value":"789"}]), vec![c]),
        (json!([{"op":"contains","field":"title","value":"FULL"}]), vec![c]),
        (json!([{"op":"exist","field":"completedDate"}]), vec![c]),
        (json!([{"op":"notExist","field":"completedDate"}]), vec![a, b]),
        (json!([{"op":"in","field":"priority","value":[4,3]}]), vec![b]),
        (json!([{"op":"notIn","field":"priority","value":[4]}]), vec![a, c]),
        (
            json!([{"op":"or","items":[{"op":"eq","field":"priority","value":4},
                   {"op":"and","items":[{"op":"eq","field":"status","value":5},{"op":"exist","field":"id"}]}]}]),
            vec![b, c],
        ),
        (json!([{"op":"eq","field":"External Reference","udf":true,"value":"x-1"}]), vec![a, b, c]),
        (json!([{"op":"gt","field":"dueDateTime","value":"2030-01-01T00:00:00"}]), vec![a, b, c]),
    ];
    for (filter, expected) in cases {
        let (st, v) = s.post("Tickets/query", q(filter.clone())).await;
        assert_eq!(st, 200, "{filter} -> {v}");
        assert_eq!(ids(&v), expected, "{filter}");
        let (_, n) = s.post("Tickets/query/count", json!({"Filter": filter})).await;
        assert_eq!(n, json!({"queryCount": expected.len()}));
    }
    // GET ?search= and count
    let search = json!({"filter":[{"op":"eq","field":"companyID","value":ACME}]}).to_string();
    let r = s.authed(Method::GET, &s.url("Tickets/query")).query(&[("search", &search)]).send().await.unwrap();
    assert_eq!(ids(&r.json::<Value>().await.unwrap()), vec![a, b, c]);
    let r = s.authed(Method::GET, &s.url("Tickets/query/count")).query(&[("search", &search)]).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"queryCount": 3}));
    // MaxRecords, IncludeFields, envelope
    let (_, v) = s
        .post(
            "Tickets/query",
            json!({"filter":[{"op":"eq","field":"externalID","value":"rmm-alert-123"}],"MaxRecords":1,
                   "IncludeFields":["ticketNumber","Status"]}),
        )
        .await;
    assert_eq!(v["pageDetails"], json!({"count":1,"requestCount":1,"prevPageUrl":null,"nextPageUrl":null}));
    let item = v["items"][0].as_object().unwrap();
    let mut keys: Vec<&str> = item.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, vec!["id", "status", "ticketNumber", "userDefinedFields"]);
    // query errors
    let errs: Vec<(Value, &str)> = vec![
        (json!({"filter":[{"op":"like","field":"id","value":1}]}), "Invalid operator: like"),
        (json!({"MaxRecords":5}), "Invalid query: filter is required."),
        (json!({"filter":[{"op":"exist","field":"id"}],"MaxRecords":501}), "MaxRecords must be between 1 and 500."),
        (json!({"filter":[{"op":"eq","field":"creatorType","value":1}]}), "Field creatorType is not queryable."),
        (
            json!({"filter":[{"op":"eq","field":"A","udf":true,"value":"1"},{"op":"eq","field":"B","udf":true,"value":"2"}]}),
            "Only one user-defined field may be queried at a time.",
        ),
    ];
    for (body, expected) in errs {
        let (st, v) = s.post("Tickets/query", body.clone()).await;
        assert_eq!(st, 500, "{body}");
        assert_eq!(err(&v), expected);
    }
}

#[tokio::test]
async fn paging_over_500_rows_with_repost() {
    let s = Sim::start().await;
    for i in 0..1203 {
        s.create_ok(with(ticket(), "externalID", json!(format!("bulk-{i}")))).await;
    }
    let body = json!({"filter":[{"op":"beginsWith","field":"externalID","value":"bulk-"}]});
    let (_, first) = s.post("Tickets/query", body.clone()).await;
    assert_eq!(first["pageDetails"]["count"], 500);
    assert_eq!(first["pageDetails"]["requestCount"], 500);
    assert!(first["pageDetails"]["prevPageUrl"].is_null());
    let mut all: Vec<i64> = first["items"].as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()).collect();
    let mut next = first["pageDetails"]["nextPageUrl"].as_str().unwrap().to_owned();
    assert!(next.starts_with(&format!("{}/ATServicesRest/V1.0/Tickets/query/next?paging=", s.h.base_url())));

    // GET on a POST-originated next page is refused
    let r = s.authed(Method::GET, &next).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"Message":"The requested resource does not support http method 'GET'."})
    );

    let mut pages = 1;
    loop {
        let r = s.authed(Method::POST, &next).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        pages += 1;
        assert!(v["pageDetails"]["prevPageUrl"].is_string());
        all.extend(v["items"].as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()));
        match v["pageDetails"]["nextPageUrl"].as_str() {
            Some(u) => next = u.to_owned(),
            None => {
                assert_eq!(v["pageDetails"]["count"], 203);
                break;
            }
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(all.len(), 1203);
    assert!(all.windows(2).all(|w| w[0] < w[1]), "ordered by id, no duplicates");

    // MaxRecords caps the page size and the paging URL keeps it
    let (_, v) = s.post("Tickets/query", json!({"filter": body["filter"], "MaxRecords": 100})).await;
    assert_eq!(v["pageDetails"]["count"], 100);
    let next = v["pageDetails"]["nextPageUrl"].as_str().unwrap();
    let r: Value = s.authed(Method::POST, next).json(&body).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["items"][0]["id"].as_i64().unwrap(), all[100]);

    // a ?search= query's next page is followed with GET
    let search = body.to_string();
    let r: Value = s
        .authed(Method::GET, &s.url("Tickets/query"))
        .query(&[("search", &search)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let next = r["pageDetails"]["nextPageUrl"].as_str().unwrap();
    let r = s.authed(Method::GET, next).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["items"][0]["id"].as_i64().unwrap(), all[500]);
}

#[tokio::test]
async fn notes() {
    let s = Sim::start().await;
    let id = s.create_ok(ticket()).await;
    let note = json!({"ticketID":id,"title":"Auto-resolved","description":"Backup succeeded on retry.","noteType":1,"publish":2});
    let (st, v) = s.post(&format!("Tickets/{id}/Notes"), note.clone()).await;
    assert_eq!(st, 200);
    let note_id = v["itemId"].as_i64().unwrap();
    assert_eq!(note_id, 30_777_658);
    let (st, v) = s.call(Method::GET, &format!("Tickets/{id}/Notes"), None).await;
    assert_eq!(st, 200);
    assert_eq!(v["items"][0]["id"], note_id);
    assert_eq!(v["items"][0]["creatorResourceID"], 29_682_885);
    assert_eq!(v["pageDetails"]["count"], 1);
    let (_, q) = s.post("TicketNotes/query", json!({"filter":[{"op":"eq","field":"ticketID","value":id}]})).await;
    assert_eq!(q["items"], v["items"]);
    // the root entity path does not take creates
    let (st, v) = s.post("TicketNotes", note.clone()).await;
    assert_eq!((st.as_u16(), v), (404, Value::Null));
    // rules
    let (_, v) = s.post("Tickets/999/Notes", note.clone()).await;
    assert_eq!(err(&v), "Reference value on field: ticketID of type: Ticket does not exist or is invalid.");
    let (_, v) = s.post(&format!("Tickets/{id}/Notes"), with(note.clone(), "description", Value::Null)).await;
    assert_eq!(err(&v), "description is required.; on record number [0].");
    let (_, v) = s.post(&format!("Tickets/{id}/Notes"), with(note.clone(), "publish", json!(9))).await;
    assert_eq!(err(&v), "Value does not reference an existing entity for publish . ");
    // category 100 requires note titles
    let mon = s.create_ok(json!({"companyID":ACME,"title":"Mon","status":1,"ticketCategory":100})).await;
    let (_, v) =
        s.post(&format!("Tickets/{mon}/Notes"), with(with(note, "ticketID", json!(mon)), "title", Value::Null)).await;
    assert_eq!(err(&v), "title is required.; on record number [0].");
    assert_eq!(s.control_get("notes").await.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn companies_billing_codes_and_devices() {
    let s = Sim::start().await;
    let (_, v) = s
        .post(
            "Companies/query",
            json!({"filter":[{"op":"eq","field":"isActive","value":true},{"op":"beginsWith","field":"companyName","value":"acme"}],
                   "IncludeFields":["id","companyName","isActive"]}),
        )
        .await;
    assert_eq!(
        v,
        json!({"items":[{"id":29683616,"companyName":"Acme Corp","isActive":true,"userDefinedFields":[]}],
               "pageDetails":{"count":1,"requestCount":500,"prevPageUrl":null,"nextPageUrl":null}})
    );
    let (_, v) = s.call(Method::GET, "Companies/29683616", None).await;
    assert_eq!(
        v,
        json!({"item":{"id":29683616,"companyName":"Acme Corp","isActive":true,"companyType":1,"userDefinedFields":[]}})
    );
    let (_, v) = s
        .post(
            "BillingCodes/query",
            json!({"filter":[{"op":"eq","field":"useType","value":1},{"op":"eq","field":"isActive","value":true}]}),
        )
        .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    assert_eq!(v["items"][0]["id"], 29_682_801);
    let (_, v) = s
        .post(
            "ConfigurationItems/query",
            json!({"filter":[{"op":"eq","field":"companyID","value":ACME},{"op":"eq","field":"referenceTitle","value":"PC-1"}]}),
        )
        .await;
    assert_eq!(v["items"][0]["id"], 1583);
    let (st, _) = s.call(Method::GET, "ConfigurationItems/1583", None).await;
    assert_eq!(st, 200);
    let (st, _) = s.call(Method::GET, "BillingCodes/29682801", None).await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn metadata() {
    let s = Sim::start().await;
    let (_, v) = s.call(Method::GET, "Tickets/entityInformation", None).await;
    assert_eq!(v["info"]["name"], "Tickets");
    assert_eq!(v["info"]["canDelete"], false);
    assert_eq!(v["info"]["canCreate"], true);
    let (_, v) = s.call(Method::GET, "Tickets/entityInformation/fields", None).await;
    let fields = v["fields"].as_array().unwrap();
    let fixture: Value = serde_json::from_str(simulators::autotask::TICKET_FIELDS_JSON).unwrap();
    assert_eq!(fields, fixture["fields"].as_array().unwrap());
    let (_, v) = s.call(Method::GET, "Tickets/entityInformation/userDefinedFields", None).await;
    assert_eq!(v["fields"][0]["name"], "External Reference");
    assert_eq!(v["fields"][0]["type"], "string");
    let (_, v) = s.call(Method::GET, "TicketNotes/entityInformation/fields", None).await;
    let names: Vec<&str> = v["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"noteType") && names.contains(&"publish") && names.contains(&"ticketID"));
    let (_, v) = s.call(Method::GET, "Companies/entityInformation/fields", None).await;
    assert!(v["fields"].as_array().unwrap().iter().any(|f| f["name"] == "companyName"));
}

#[tokio::test]
async fn thread_limit_under_concurrency() {
    let s = Sim::start().await;
    s.control("limits", json!({"hold_ms": 400})).await;
    let reqs = (0..5).map(|_| s.call(Method::GET, "Companies/0", None));
    let results = futures::future::join_all(reqs).await;
    let ok = results.iter().filter(|(st, _)| *st == 200).count();
    let limited: Vec<&Value> = results.iter().filter(|(st, _)| *st == 429).map(|(_, v)| v).collect();
    assert_eq!((ok, limited.len()), (3, 2), "{results:?}");
    assert_eq!(
        err(limited[0]),
        "Thread threshold exceeded: max 3 concurrent requests per endpoint for this integration."
    );
    // another entity has its own bucket; slots are released afterwards
    let (mixed_a, mixed_b) = futures::future::join(
        futures::future::join_all((0..3).map(|_| s.call(Method::GET, "Companies/0", None))),
        futures::future::join_all((0..3).map(|_| s.call(Method::GET, "BillingCodes/29682801", None))),
    )
    .await;
    assert!(mixed_a.iter().chain(&mixed_b).all(|(st, _)| *st == 200));

    // the Itgenatr005 variant and Retry-After
    s.control("limits", json!({"thread_limit": 1, "thread_limit_as_500": true})).await;
    let results = futures::future::join_all((0..2).map(|_| s.call(Method::GET, "Companies/0", None))).await;
    let v = results.iter().find(|(st, _)| *st == 500).map(|(_, v)| v).expect("one rejected");
    assert_eq!(err(v), "Itgenatr005: The API thread threshold of 1 threads has been exceeded.");
}

#[tokio::test]
async fn hourly_threshold_sliding_window() {
    let s = Sim::start().await;
    s.control("limits", json!({"hourly_threshold": 3, "window_secs": 60, "retry_after_secs": 30})).await;
    for _ in 0..2 {
        assert_eq!(s.call(Method::GET, "Companies/0", None).await.0, 200);
    }
    let (st, v) = s.call(Method::GET, "ThresholdInformation", None).await;
    assert_eq!(st, 200);
    assert_eq!(v, json!({"externalRequestThreshold":3,"requestThresholdTimeframe":1,"currentTimeframeRequestCount":3}));
    let r = s.authed(Method::GET, &s.url("Companies/0")).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "30");
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"errors":["Request threshold exceeded."]}));
    // zone discovery is not throttled
    let r = s.c.get(format!("{}/atservicesrest/v1.0/zoneInformation?user=api%40sim.local", s.h.base_url())).send();
    assert_eq!(r.await.unwrap().status(), 200);
    // moving the clock past the window frees it
    let now = s.control("clock", json!({"advance_secs": 61})).await;
    assert!(now["now"].is_string());
    assert_eq!(s.call(Method::GET, "Companies/0", None).await.0, 200);
}

#[tokio::test]
async fn control_api() {
    let s = Sim::start().await;
    // companies upsert
    let v = s.control("companies", json!({"id":555,"companyName":"New Co","isActive":true})).await;
    assert_eq!(v["companyName"], "New Co");
    s.create_ok(with(with(ticket(), "companyID", json!(555)), "configurationItemID", Value::Null)).await;
    s.control("companies", json!({"id":555,"isActive":false})).await;
    let (_, v) =
        s.post("Tickets", with(with(ticket(), "companyID", json!(555)), "configurationItemID", Value::Null)).await;
    assert_eq!(err(&v), "Reference value on field: companyID of type: Company does not exist or is invalid.");
    let (_, v) = s.call(Method::GET, "Companies/555", None).await;
    assert_eq!(v["item"]["companyName"], "New Co");

    // picklist: deactivate, then remove, a priority
    let tid = s.create_ok(with(ticket(), "priority", json!(4))).await;
    s.control("picklist", json!({"field":"priority","value":"4","active":false})).await;
    let (_, v) = s.post("Tickets", with(ticket(), "priority", json!(4))).await;
    assert_eq!(err(&v), "Value does not reference an existing entity for priority . ");
    let (_, v) = s.call(Method::GET, "Tickets/entityInformation/fields", None).await;
    let pri = v["fields"].as_array().unwrap().iter().find(|f| f["name"] == "priority").unwrap().clone();
    assert!(pri["picklistValues"].as_array().unwrap().iter().any(|p| p["value"] == "4" && p["isActive"] == false));
    s.control("picklist", json!({"field":"priority","value":4,"remove":true})).await;
    let (_, v) = s.call(Method::GET, "Tickets/entityInformation/fields", None).await;
    let pri = v["fields"].as_array().unwrap().iter().find(|f| f["name"] == "priority").unwrap().clone();
    assert!(!pri["picklistValues"].as_array().unwrap().iter().any(|p| p["value"] == "4"));
    let (_, v) = s.call(Method::GET, &format!("Tickets/{tid}"), None).await;
    assert_eq!(v["item"]["priority"], 4, "the ticket keeps the removed value");

    // tickets dump
    let all = s.control_get("tickets").await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert!(all[0].get("ticketNumber").is_some() && all[0].get("lastActivityDate").is_some());

    // journal
    let j = s.control_get("requests").await;
    let j = j.as_array().unwrap();
    assert!(j.iter().all(|e| !e["path"].as_str().unwrap().starts_with("/_sim")));
    assert_eq!(j[0]["method"], "POST");
    assert_eq!(j[0]["path"], "/ATServicesRest/V1.0/Tickets");
    assert_eq!(j[0]["status"], 200);
    let full = s.h.requests();
    assert_eq!(full[0].header("apiintegrationcode"), Some("SIMINTEGRATIONCODE000000000"));

    // faults
    s.control(
        "faults",
        json!({"method":"POST","path_regex":"(?i)/tickets$","status":503,"body":{"errors":["down"]},"count":1}),
    )
    .await;
    let (st, v) = s.post("Tickets", ticket()).await;
    assert_eq!((st.as_u16(), v), (503, json!({"errors":["down"]})));
    let (st, _) = s.post("Tickets", ticket()).await;
    assert_eq!(st, 200);

    // limits echo
    let v = s.control("limits", json!({"thread_limit":2,"hourly_threshold":50,"window_secs":10,"hold_ms":0})).await;
    assert_eq!((v["thread_limit"].as_u64(), v["hourly_threshold"].as_u64()), (Some(2), Some(50)));

    // reset restores the seed and limits
    s.control("reset", json!({})).await;
    assert_eq!(s.control_get("tickets").await, json!([]));
    assert_eq!(s.control_get("requests").await, json!([]));
    let (st, _) = s.call(Method::GET, "Companies/555", None).await;
    assert_eq!(st, 404);
    let v = s.control_get("limits").await;
    assert_eq!(v["thread_limit"], 3);
    s.create_ok(with(ticket(), "priority", json!(4))).await;
    let id = s.create_ok(ticket()).await;
    assert_eq!(id, 128_927, "ids restart after reset");
}

#[tokio::test]
async fn clock_moves_ticket_dates() {
    let s = Sim::start().await;
    s.control("clock", json!({"advance_secs": 86400 * 2})).await;
    let id = s.create_ok(ticket()).await;
    let (_, v) = s.call(Method::GET, &format!("Tickets/{id}"), None).await;
    let day = (chrono::Utc::now() + chrono::Duration::days(2)).format("%Y%m%d").to_string();
    assert_eq!(v["item"]["ticketNumber"], format!("T{day}.0001"));
}

/// The listing the sink's `owned_tickets` sends: `externalID beginsWith` AND an `or` group of
/// "still open" and "active since", with date comparisons on `lastActivityDate` and
/// `IncludeFields`.
#[tokio::test]
async fn owned_tickets_query_shape() {
    let s = Sim::start().await;
    let key = |k: &str| with(ticket(), "externalID", json!(k));
    let old = s.create_ok(key("kmsp-old-1")).await;
    s.call(Method::PATCH, "Tickets", Some(json!({"id":old,"status":5}))).await;
    s.control("clock", json!({"advance_secs": 3 * 86_400})).await;
    let now = s.control("clock", json!({})).await["now"].as_str().unwrap().to_owned();
    let since = (chrono::DateTime::parse_from_rfc3339(&now).unwrap() - chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let open = s.create_ok(key("KMSP-open-1")).await;
    let recent = s.create_ok(key("kmsp-recent-2")).await;
    s.call(Method::PATCH, "Tickets", Some(json!({"id":recent,"status":5}))).await;
    s.create_ok(key("other-1")).await;
    for open_cond in
        [json!({"op":"notExist","field":"completedDate"}), json!({"op":"noteq","field":"status","value":5})]
    {
        let (st, v) = s
            .post(
                "Tickets/query",
                json!({"filter":[
                    {"op":"beginsWith","field":"externalID","value":"kmsp-"},
                    {"op":"or","items":[open_cond, {"op":"gte","field":"lastActivityDate","value":since}]}],
                 "IncludeFields":["id","externalID","description","status","completedDate"],"MaxRecords":500}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        let ids: Vec<i64> = v["items"].as_array().unwrap().iter().map(|t| t["id"].as_i64().unwrap()).collect();
        // beginsWith compares case-insensitively (SQL Server collation)
        assert_eq!(ids, vec![open, recent], "{v}");
        let first = &v["items"][0];
        assert_eq!(first["description"], "Job 42 failed");
        assert!(first["completedDate"].is_null());
        assert!(v["items"][1]["completedDate"].is_string(), "Complete stamps completedDate");
        assert!(first.get("title").is_none(), "projection");
    }
}

/// The note lookup `add_note` makes after an unknown outcome: `TicketNotes/query` on
/// `ticketID` and `description contains` the marker.
#[tokio::test]
async fn note_lookup_by_ticket_and_description() {
    let s = Sim::start().await;
    let a = s.create_ok(ticket()).await;
    let b = s.create_ok(ticket()).await;
    let note = |t: i64| json!({"ticketID":t,"title":"Closed automatically","description":"Fixed.\n[kmsp-x-1/close]","noteType":1,"publish":1});
    assert_eq!(s.post(&format!("Tickets/{a}/Notes"), note(a)).await.0, 200);
    assert_eq!(s.post(&format!("Tickets/{b}/Notes"), note(b)).await.0, 200);
    let look = |t: i64, m: &str| {
        json!({"filter":[{"op":"eq","field":"ticketID","value":t},{"op":"contains","field":"description","value":m}],
               "IncludeFields":["id","ticketID","description"]})
    };
    let (st, v) = s.post("TicketNotes/query", look(a, "[kmsp-x-1/close]")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    assert_eq!(v["items"][0]["ticketID"], a);
    assert_eq!(v["items"][0]["description"], "Fixed.\n[kmsp-x-1/close]");
    let (_, v) = s.post("TicketNotes/query", look(a, "[kmsp-x-2/close]")).await;
    assert_eq!(v["items"], json!([]));
}

//! The admin API over HTTP on both backends: sign-in, roles and station scope on every endpoint,
//! roster upload, assessment, lists and exports.

use chrono::{TimeZone, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use yibao_server::{Clock, ServerSettings};
use yibao_tests::xlsx::{cell, sheet_of};
use yibao_tests::{make_id, on_each_backend, TestServer};

/// 2020-11-02 10:00 in Beijing: inside 南通市's 2021 window.
fn clock() -> Clock {
    Clock::fixed(Utc.with_ymd_and_hms(2020, 11, 2, 2, 0, 0).unwrap())
}

struct World {
    server: TestServer,
    admin: String,
    operator: String,
    auditor: String,
    /// A person of station ST-01 (the operator's) and one of ST-02.
    own: String,
    other: String,
}

async fn login(server: &TestServer, username: &str, password: &str) -> String {
    let r = server
        .client
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

async fn world(storage: std::sync::Arc<dyn yibao_storage::Storage>) -> World {
    yibao::demo::load(storage.as_ref()).await.unwrap();
    let admin_password =
        yibao_server::services::staff::Password::new("admin-password-1".into()).unwrap();
    yibao_server::services::staff::create_staff(
        storage.as_ref(),
        yibao_server::services::staff::NewStaff {
            temporary_password: false,
            username: "root".into(),
            display_name: "管理员".into(),
            role: yibao_storage::Role::Admin,
            region: None,
            station: None,
            password: admin_password,
        },
        "test",
    )
    .await
    .unwrap();
    let server = TestServer::start(storage, clock(), ServerSettings::default()).await;
    let admin = login(&server, "root", "admin-password-1").await;
    for (name, role, station) in [
        ("op1", "station_operator", Some("ST-01")),
        ("aud", "auditor", None),
    ] {
        let r = server
            .client
            .post(server.url("/api/v1/staff"))
            .bearer_auth(&admin)
            .json(
                &json!({ "username": name, "display_name": name, "role": role,
                "region": if station.is_some() { Some("320600") } else { None }, "station": station,
                "password": "station-password-1" }),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap()
        );
    }
    let operator = login(&server, "op1", "station-password-1").await;
    let auditor = login(&server, "aud", "station-password-1").await;
    let own = make_id("320602", "1980-01-01", 1);
    let other = make_id("320602", "1981-01-01", 2);
    for (id, station) in [(&own, "ST-01"), (&other, "ST-02")] {
        let r = server
            .client
            .put(server.url(&format!("/api/v1/regions/320600/persons/{id}")))
            .bearer_auth(&admin)
            .json(&json!({ "name": "张三", "station": station }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    }
    World {
        server,
        admin,
        operator,
        auditor,
        own,
        other,
    }
}

async fn code_of(r: reqwest::Response) -> (StatusCode, String) {
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn sign_in_is_required_and_wrong_passwords_are_refused_alike() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let c = &w.server.client;
        let r = c.get(w.server.url("/api/v1/audit")).send().await.unwrap();
        assert_eq!(
            code_of(r).await,
            (StatusCode::UNAUTHORIZED, "AUTH_REQUIRED".into())
        );
        let r = c
            .get(w.server.url("/api/v1/audit"))
            .bearer_auth("forged")
            .send()
            .await
            .unwrap();
        assert_eq!(
            code_of(r).await,
            (StatusCode::UNAUTHORIZED, "AUTH_REQUIRED".into())
        );
        for (user, password) in [("root", "wrong-password"), ("nobody", "admin-password-1")] {
            let r = c
                .post(w.server.url("/api/v1/auth/login"))
                .json(&json!({ "username": user, "password": password }))
                .send()
                .await
                .unwrap();
            assert_eq!(
                code_of(r).await,
                (StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS".into())
            );
        }
        let r = c
            .post(w.server.url("/api/v1/auth/logout"))
            .bearer_auth(&w.auditor)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let r = c
            .get(w.server.url("/api/v1/audit"))
            .bearer_auth(&w.auditor)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "a logged-out token is dead"
        );
    })
    .await;
}

#[tokio::test]
async fn a_station_operator_gets_403_for_another_stations_people_on_every_endpoint() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let c = &w.server.client;
        let s = |p: &str| w.server.url(p);
        let other = &w.other;
        let own = &w.own;
        let forbidden = [
            c.get(s(&format!("/api/v1/regions/320600/persons/{other}"))),
            c.put(s(&format!("/api/v1/regions/320600/persons/{other}"))).json(&json!({"name": "张三", "station": "ST-02"})),
            // Moving someone of another station into one's own is a change to the other station too.
            c.put(s(&format!("/api/v1/regions/320600/persons/{other}"))).json(&json!({"name": "张三", "station": "ST-01"})),
            // Registering someone for another station.
            c.put(s(&format!("/api/v1/regions/320600/persons/{}", make_id("320602", "1990-01-01", 9)))).json(&json!({"name": "新人", "station": "ST-02"})),
            c.get(s(&format!("/api/v1/regions/320600/persons/{other}/history"))),
            c.post(s(&format!("/api/v1/regions/320600/fee-years/2021/persons/{other}/reassessment"))),
            c.get(s("/api/v1/regions/320600/fee-years/2021/standing?station=ST-02")),
            c.get(s("/api/v1/regions/320600/fee-years/2021/paid-listing?station=ST-02")),
            c.get(s("/api/v1/regions/460100/fee-years/2027/standing")),
            c.post(s("/api/v1/regions/320600/fee-years/2021/assessment")),
            c.post(s("/api/v1/staff")).json(&json!({"username": "x1", "display_name": "x", "role": "admin", "password": "abcdefghijk"})),
            c.get(s("/api/v1/audit")),
            c.put(s("/api/v1/regions/320600")).json(&json!({"name": "南通市"})),
            c.put(s("/api/v1/regions/320600/fee-policies/2022")).json(&json!({})),
            c.put(s("/api/v1/regions/320600/calendars/2022")).json(&json!({})),
            c.get(s("/api/v1/collection/overdue-refunds")),
            c.get(s("/api/v1/collection/unposted")),
        ];
        for request in forbidden {
            let r = request.bearer_auth(&w.operator).send().await.unwrap();
            let url = r.url().to_string();
            assert_eq!(code_of(r).await, (StatusCode::FORBIDDEN, "FORBIDDEN".into()), "{url}");
        }
        // Their own station's person is theirs.
        let r = c.get(s(&format!("/api/v1/regions/320600/persons/{own}"))).bearer_auth(&w.operator).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let r = c.get(s("/api/v1/regions/320600/fee-years/2021/standing")).bearer_auth(&w.operator).send().await.unwrap();
        let rows: Value = r.json().await.unwrap();
        let ids: Vec<_> = rows.as_array().unwrap().iter().map(|r| r["id_number"].as_str().unwrap().to_owned()).collect();
        assert_eq!(ids, vec![own.clone()], "only their own station's people");
        // The auditor reads everything and changes nothing.
        let r = c.get(s(&format!("/api/v1/regions/320600/persons/{other}"))).bearer_auth(&w.auditor).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let r = c
            .put(s(&format!("/api/v1/regions/320600/persons/{other}")))
            .bearer_auth(&w.auditor)
            .json(&json!({"name": "张三"}))
            .send()
            .await
            .unwrap();
        assert_eq!(code_of(r).await, (StatusCode::FORBIDDEN, "FORBIDDEN".into()));
    })
    .await;
}

#[tokio::test]
async fn a_roster_upload_by_an_operator_takes_only_their_station() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let a = make_id("320602", "1970-05-05", 31);
        let b = make_id("320602", "1971-05-05", 32);
        let csv = format!(
            "姓名,身份证号码,参保地区,服务站\n甲,{a},320600,ST-01\n乙乙,{b},320600,ST-02\n"
        );
        let r = w
            .server
            .client
            .post(w.server.url("/api/v1/rosters?file_name=station.csv"))
            .bearer_auth(&w.operator)
            .body(csv)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let report: Value = r.json().await.unwrap();
        // Row 2: 甲 is one character: a bad name. Row 3: another station.
        assert_eq!(report["rows_read"], 2);
        assert_eq!(report["rejected"], 2);
        assert_eq!(report["rejections"][0]["column"], "姓名");
        assert_eq!(report["rejections"][1]["column"], "服务站");
        let r = w
            .server
            .client
            .post(w.server.url("/api/v1/rosters?file_name=bad.xls"))
            .bearer_auth(&w.admin)
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(
            code_of(r).await,
            (StatusCode::UNPROCESSABLE_ENTITY, "BAD_ROSTER_FILE".into())
        );
        let r = w
            .server
            .client
            .get(w.server.url("/api/v1/rosters/template.csv"))
            .bearer_auth(&w.operator)
            .send()
            .await
            .unwrap();
        let template = r.text().await.unwrap();
        assert!(template.starts_with("\u{feff}姓名,身份证号码,参保地区"));
    })
    .await;
}

/// Issue 10, defect 2: a roster row may only create a person or change one in the uploader's own
/// scope (the rule of `PUT /persons`); a row touching anyone else is a rejected row.
#[tokio::test]
async fn a_roster_row_cannot_take_or_change_another_stations_person() {
    on_each_backend(|storage| async move {
        let w = &world(storage).await;
        let c = &w.server.client;
        let r = c
            .post(w.server.url("/api/v1/staff"))
            .bearer_auth(&w.admin)
            .json(
                &json!({ "username": "tax1", "display_name": "税务", "role": "tax_collector",
                "region": "320600", "password": "station-password-1" }),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let tax = login(&w.server, "tax1", "station-password-1").await;
        let new = make_id("320602", "1975-03-03", 41);
        let elsewhere = make_id("341102", "1976-03-03", 42);
        let upload = |token: String, csv: String| async move {
            let r = w
                .server
                .client
                .post(w.server.url("/api/v1/rosters?file_name=scope.csv"))
                .bearer_auth(token)
                .body(csv)
                .send()
                .await
                .unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap())
        };
        let person = |id: String| async move {
            let r = w
                .server
                .client
                .get(
                    w.server
                        .url(&format!("/api/v1/regions/320600/persons/{id}")),
                )
                .bearer_auth(&w.admin)
                .send()
                .await
                .unwrap();
            let body: Value = r.json().await.unwrap();
            body["person"].clone()
        };
        // The operator of ST-01: row 2 moves ST-02's person into ST-01 with a new phone, row 3
        // changes their own person's phone, row 4 registers someone new, row 5 is another region.
        let csv = format!(
            "姓名,身份证号码,参保地区,服务站,联系电话\n张三,{other},320600,ST-01,13900001111\n\
             张三,{own},320600,ST-01,13900002222\n王小五,{new},320600,ST-01,\n\
             赵六,{elsewhere},341100,ST-01,\n",
            other = w.other,
            own = w.own,
        );
        let (status, report) = upload(w.operator.clone(), csv.clone()).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        assert_eq!(report["rows_read"], 4, "{report}");
        assert_eq!(report["updated"], 1, "{report}");
        assert_eq!(report["enrolled"], 1, "{report}");
        assert_eq!(report["rejected"], 2, "{report}");
        let rows: Vec<(i64, String, String)> = report["rejections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["row"].as_i64().unwrap(),
                    r["column"].as_str().unwrap().to_owned(),
                    r["reason"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert!(
            rows.iter().any(|(row, column, reason)| *row == 2
                && column == "服务站"
                && reason.contains("其他服务站")),
            "{rows:?}"
        );
        assert!(rows.iter().any(|(row, _, _)| *row == 5), "{rows:?}");
        let stored = person(w.other.clone()).await;
        assert_eq!(stored["station"], "ST-02", "{stored}");
        assert_eq!(stored["phone"], Value::Null, "{stored}");
        assert_eq!(person(w.own.clone()).await["phone"], "13900002222");
        assert_eq!(person(new.clone()).await["station"], "ST-01");
        // The same change through PUT is refused too: one rule for both.
        let r = c
            .put(
                w.server
                    .url(&format!("/api/v1/regions/320600/persons/{}", w.other)),
            )
            .bearer_auth(&w.operator)
            .json(&json!({ "name": "张三", "station": "ST-01", "phone": "13900001111" }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            code_of(r).await,
            (StatusCode::FORBIDDEN, "FORBIDDEN".into())
        );
        // A region-bound tax collector changes nobody: refused before the file is read.
        let (status, report) = upload(tax, csv.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{report}");
        // The center administrator may move anyone.
        let (status, report) = upload(w.admin.clone(), csv).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        assert!(
            !report["rejections"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["row"] == 2 || r["row"] == 3),
            "{report}"
        );
        let stored = person(w.other.clone()).await;
        assert_eq!(stored["station"], "ST-01", "{stored}");
        assert_eq!(stored["phone"], "13900001111", "{stored}");
    })
    .await;
}

#[tokio::test]
async fn assessment_lists_and_exports() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let c = &w.server.client;
        let s = |p: &str| w.server.url(p);
        let r = c
            .post(s("/api/v1/regions/320600/fee-years/2021/assessment"))
            .bearer_auth(&w.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let report: Value = r.json().await.unwrap();
        assert_eq!(report["created"], 2);
        assert_eq!(report["amount_fen"], 86000);
        let r = c
            .get(s(
                "/api/v1/regions/320600/fee-years/2021/standing?only_unpaid=true",
            ))
            .bearer_auth(&w.admin)
            .send()
            .await
            .unwrap();
        let rows: Value = r.json().await.unwrap();
        assert_eq!(rows.as_array().unwrap().len(), 2);
        assert_eq!(rows[0]["standing"], "unpaid");
        assert_eq!(rows[0]["reason"], "未缴费");
        assert_eq!(rows[0]["amount_fen"], 43000);
        let r = c
            .get(s(
                "/api/v1/regions/320600/fee-years/2021/standing?format=xlsx",
            ))
            .bearer_auth(&w.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("spreadsheetml"));
        assert_eq!(&r.bytes().await.unwrap()[..2], b"PK");
        let r = c
            .get(s("/api/v1/regions/320600/fee-years/2021/paid-listing"))
            .bearer_auth(&w.admin)
            .send()
            .await
            .unwrap();
        let html = r.text().await.unwrap();
        assert!(html.contains("共0人"), "nobody has paid yet");
        // Re-assess: a new payable from tomorrow.
        let r = c
            .post(s(&format!(
                "/api/v1/regions/320600/fee-years/2021/persons/{}/reassessment",
                w.own
            )))
            .bearer_auth(&w.operator)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let payable: Value = r.json().await.unwrap();
        assert_eq!(payable["payable_from"], "2020-11-03");
        // Every change is in the audit log with its actor.
        let audit: Value = c
            .get(s("/api/v1/audit?limit=50"))
            .bearer_auth(&w.auditor)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let actions: Vec<(String, String)> = audit
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["actor"].as_str().unwrap().to_owned(),
                    e["action"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert!(
            actions.contains(&("op1".into(), "assessment.reassess".into())),
            "{actions:?}"
        );
        assert!(actions.contains(&("root".into(), "assessment.run".into())));
        assert!(actions.contains(&("root".into(), "person.put".into())));
        assert!(actions.contains(&("root".into(), "staff.create".into())));
    })
    .await;
}

#[tokio::test]
async fn person_edits_are_checked_and_kept_as_history() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let c = &w.server.client;
        let url = w.server.url(&format!("/api/v1/regions/320600/persons/{}", w.own));
        let r = c.put(&url).bearer_auth(&w.admin).json(&json!({"name": "张三", "phone": "12345"})).send().await.unwrap();
        assert_eq!(code_of(r).await, (StatusCode::UNPROCESSABLE_ENTITY, "INVALID_PERSON".into()));
        let r = c
            .put(&url)
            .bearer_auth(&w.admin)
            .json(&json!({"name": "张叁", "station": "ST-01", "relief_kind": "低保", "certificate_name": "低保证",
                           "certificate_number": "D1", "certificate_valid_until": "2021-12-31"}))
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["change"], "updated");
        assert_eq!(body["person"]["version"], 2);
        let history: Value = c.get(format!("{url}/history")).bearer_auth(&w.operator).send().await.unwrap().json().await.unwrap();
        assert_eq!(history.as_array().unwrap().len(), 2);
        assert_eq!(history[1]["changed_by"], "root");
        assert_eq!(history[1]["snapshot"]["relief_kind"], "minimum_living_allowance");
        let bad = w.server.url("/api/v1/regions/320600/persons/320602198001011231");
        let r = c.get(&bad).bearer_auth(&w.admin).send().await.unwrap();
        assert_eq!(code_of(r).await, (StatusCode::UNPROCESSABLE_ENTITY, "INVALID_ID_NUMBER".into()));
    })
    .await;
}

#[tokio::test]
async fn regions_fee_policies_and_calendars_are_set_through_the_api() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let c = &w.server.client;
        let s = |p: &str| w.server.url(p);
        let r = c
            .put(s("/api/v1/regions/321000"))
            .bearer_auth(&w.admin)
            .json(&json!({"name": "扬州市"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let minor = json!({"total": 30000, "critical_illness": 2000});
        let policy = json!({
            "amounts": {"adult": {"total": 43000, "critical_illness": 2000, "long_term_care": 3000},
                        "minor_not_in_school": minor, "student": minor, "newborn": minor},
            "age_reference_date": "2022-01-01",
            "window": {"opens": "2021-09-01", "closes": "2021-12-31"},
        });
        let r = c
            .put(s("/api/v1/regions/321000/fee-policies/2022"))
            .bearer_auth(&w.admin)
            .json(&policy)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::NO_CONTENT,
            "{}",
            r.text().await.unwrap()
        );
        let listed: Value = c
            .get(s("/api/v1/regions/321000/fee-policies"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            listed[0]["amounts"][0]["components"][0]["amount"], 38000,
            "basic is the remainder"
        );
        // Components above the total, a missing category, and a negative amount are refused.
        let mut bad = policy.clone();
        bad["amounts"]["adult"]["critical_illness"] = json!(50000);
        let r = c
            .put(s("/api/v1/regions/321000/fee-policies/2022"))
            .bearer_auth(&w.admin)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(code_of(r).await.1, "INVALID_REQUEST");
        let mut bad = policy.clone();
        bad["amounts"].as_object_mut().unwrap().remove("newborn");
        let r = c
            .put(s("/api/v1/regions/321000/fee-policies/2022"))
            .bearer_auth(&w.admin)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(code_of(r).await.1, "INVALID_REQUEST");
        let mut bad = policy.clone();
        bad["amounts"]["adult"]["total"] = json!(-1);
        let r = c
            .put(s("/api/v1/regions/321000/fee-policies/2022"))
            .bearer_auth(&w.admin)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(code_of(r).await.1, "INVALID_AMOUNT");
        let r = c
            .put(s("/api/v1/regions/321000/calendars/2021"))
            .bearer_auth(&w.admin)
            .json(
                &json!({"holidays": ["2021-10-01", "2021-10-04"], "working_days": ["2021-10-09"]}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let due: Value = c
            .get(s(
                "/api/v1/regions/321000/working-days?from=2021-09-30&days=2",
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(due["date"], "2021-10-06");
        let r = c
            .put(s("/api/v1/regions/321000/calendars/2021"))
            .bearer_auth(&w.admin)
            .json(&json!({"holidays": ["2021-10-02"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            code_of(r).await.1,
            "INVALID_CALENDAR",
            "a Saturday is not a holiday to configure"
        );
    })
    .await;
}

#[tokio::test]
async fn the_unpaid_list_leaves_out_exempt_and_refused_has_phones_and_its_xlsx_sums() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let c = &w.server.client;
        let s = |p: &str| w.server.url(p);
        // A phone for the own station's person, an exempt (特困) and a refused (employee-insured) one.
        let exempt = make_id("320602", "1970-01-01", 3);
        let refused = make_id("320602", "1972-01-01", 4);
        for (id, body) in [
            (
                &w.own,
                json!({"name": "张三", "station": "ST-01", "phone": "13800138000"}),
            ),
            (
                &exempt,
                json!({"name": "李四", "station": "ST-01", "relief_kind": "特困",
                "certificate_name": "特困人员救助供养证", "certificate_number": "TK1",
                "certificate_valid_until": "2021-12-31"}),
            ),
            (
                &refused,
                json!({"name": "王五", "station": "ST-01", "employee_insured": true}),
            ),
        ] {
            let r = c
                .put(s(&format!("/api/v1/regions/320600/persons/{id}")))
                .bearer_auth(&w.admin)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        }
        let r = c
            .post(s("/api/v1/regions/320600/fee-years/2021/assessment"))
            .bearer_auth(&w.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        // Everyone: four people, among them the exempt and the refused.
        let all: Value = c
            .get(s("/api/v1/regions/320600/fee-years/2021/standing"))
            .bearer_auth(&w.admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let standings: Vec<&str> = all
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["standing"].as_str().unwrap())
            .collect();
        assert!(
            standings.contains(&"exempt") && standings.contains(&"enrolment_refused"),
            "{standings:?}"
        );
        // The unpaid list: only those who owe, with their phone.
        let unpaid: Value = c
            .get(s(
                "/api/v1/regions/320600/fee-years/2021/standing?only_unpaid=true",
            ))
            .bearer_auth(&w.admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let unpaid = unpaid.as_array().unwrap();
        assert_eq!(unpaid.len(), 2, "{unpaid:?}");
        assert!(unpaid.iter().all(|r| r["standing"] == "unpaid"));
        let own = unpaid
            .iter()
            .find(|r| r["id_number"] == w.own.as_str())
            .unwrap();
        assert_eq!(own["phone"], "13800138000");
        // The station's own list as XLSX: numbers, a frozen header, totals, a named file.
        let r = c
            .get(s(
                "/api/v1/regions/320600/fee-years/2021/standing?only_unpaid=true&format=xlsx",
            ))
            .bearer_auth(&w.operator)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let disposition = r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            disposition.contains("filename=\"unpaid-320600-2021-ST-01-20201102.xlsx\""),
            "{disposition}"
        );
        assert!(disposition.contains("filename*=UTF-8''"), "{disposition}");
        let sheet = sheet_of(&r.bytes().await.unwrap());
        let title = cell(&sheet, "A1").unwrap().unwrap_err();
        assert!(
            title.contains("南通市（320600）") && title.contains("ST-01") && title.contains("2021"),
            "{title}"
        );
        assert_eq!(cell(&sheet, "D2"), Some(Err("联系电话".into())));
        assert!(
            sheet.0.contains("ySplit=\"2\"") && sheet.0.contains("state=\"frozen\""),
            "frozen header"
        );
        // One row (the own station's unpaid person), then the totals.
        assert_eq!(cell(&sheet, "C3"), Some(Err(w.own.clone())));
        assert_eq!(cell(&sheet, "D3"), Some(Err("13800138000".into())));
        assert_eq!(cell(&sheet, "E3"), Some(Err("未缴费".into())));
        assert_eq!(
            cell(&sheet, "G3"),
            Some(Ok("430".into())),
            "an amount is a number"
        );
        assert_eq!(cell(&sheet, "A4"), Some(Err("合计（1 人）".into())));
        assert_eq!(
            cell(&sheet, "G4"),
            Some(Ok("430".into())),
            "the total is a number"
        );
        assert!(!sheet.1.iter().any(|t| t == "430.00"), "no amount as text");
    })
    .await;
}

async fn sign_in(server: &TestServer, username: &str, password: &str) -> reqwest::Response {
    server
        .client
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .unwrap()
}

/// Issue 10, defect 12: 40 wrong passwords fired at once are not all checked; at most 5 reach the
/// password hash (each audited and answered 401), the rest are 429 `LOGIN_THROTTLED` with how long
/// to wait, and then even the right password waits.
#[tokio::test]
async fn forty_concurrent_wrong_passwords_check_at_most_five_and_the_account_then_waits() {
    on_each_backend(|storage| async move {
        let w = world(storage.clone()).await;
        let attempts = (0..40).map(|i| {
            let server = &w.server;
            async move { sign_in(server, "root", &format!("wrong-password-{i}")).await }
        });
        let answers = futures_join_all(attempts).await;
        let mut refused = 0;
        let mut throttled = Vec::new();
        for r in answers {
            match r.status() {
                StatusCode::UNAUTHORIZED => refused += 1,
                StatusCode::TOO_MANY_REQUESTS => throttled.push(r),
                other => panic!("unexpected {other}"),
            }
        }
        assert_eq!(refused, 5, "at most 5 checked against the hash");
        assert_eq!(throttled.len(), 35);
        let r = throttled.pop().unwrap();
        let wait: i64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=900).contains(&wait), "{wait}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "LOGIN_THROTTLED");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("该账号15分钟内登录失败已达5次"),
            "{message}"
        );
        assert!(message.contains("分钟后再试"), "{message}");

        // The right password does not work at once.
        let r = sign_in(&w.server, "root", "admin-password-1").await;
        assert_eq!(
            code_of(r).await,
            (StatusCode::TOO_MANY_REQUESTS, "LOGIN_THROTTLED".into())
        );
        // Another account from the same address still signs in.
        let r = sign_in(&w.server, "aud", "station-password-1").await;
        assert_eq!(r.status(), StatusCode::OK);

        // Every failure checked is audited with the user name and address, never the password.
        let audit = storage.list_audit(200).await.unwrap();
        let failed: Vec<_> = audit
            .iter()
            .filter(|a| a.entry.action == "staff.login_failed")
            .collect();
        assert_eq!(failed.len(), 5);
        for a in &failed {
            assert_eq!(a.entry.target, "root");
            assert_eq!(a.entry.detail["address"], "127.0.0.1");
            assert_eq!(a.entry.detail["reason"], "wrong_password");
            assert!(!a.entry.detail.to_string().contains("wrong-password"));
        }
    })
    .await;
}

#[tokio::test]
async fn reading_personal_data_is_audited() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let c = &w.server.client;
        let s = |p: &str| w.server.url(p);
        for (token, path) in [
            (
                &w.operator,
                "/api/v1/regions/320600/fee-years/2021/standing?only_unpaid=true&format=xlsx"
                    .to_owned(),
            ),
            (
                &w.admin,
                "/api/v1/regions/320600/fee-years/2021/standing".to_owned(),
            ),
            (
                &w.operator,
                format!("/api/v1/regions/320600/persons/{}", w.own),
            ),
            (
                &w.operator,
                format!("/api/v1/regions/320600/persons/{}/history", w.own),
            ),
            (
                &w.admin,
                "/api/v1/regions/320600/fee-years/2021/paid-listing".to_owned(),
            ),
        ] {
            let r = c.get(s(&path)).bearer_auth(token).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{path}");
        }
        let audit: Value = c
            .get(s("/api/v1/audit?limit=100"))
            .bearer_auth(&w.auditor)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let entries = audit.as_array().unwrap();
        let find = |actor: &str, action: &str| {
            entries
                .iter()
                .find(|e| e["actor"] == actor && e["action"] == action)
                .unwrap_or_else(|| panic!("no {action} by {actor}: {entries:?}"))
                .clone()
        };
        let unpaid = find("op1", "read.unpaid_list");
        assert_eq!(unpaid["region"], "320600");
        assert_eq!(unpaid["target"], "2021");
        assert_eq!(
            unpaid["detail"]["station"], "ST-01",
            "scope: the operator's station"
        );
        assert_eq!(unpaid["detail"]["format"], "xlsx");
        assert_eq!(unpaid["detail"]["rows"], 1);
        let all = find("root", "read.standing");
        assert_eq!(all["detail"]["rows"], 2);
        assert_eq!(all["detail"]["station"], Value::Null, "the whole region");
        let person = find("op1", "read.person");
        let target = person["target"].as_str().unwrap();
        assert!(
            target.contains('*') && !target.contains(&w.own[6..14]),
            "the ID number is masked: {target}"
        );
        assert_eq!(person["detail"]["rows"], 1);
        assert_eq!(find("op1", "read.person_history")["detail"]["rows"], 1);
        assert_eq!(find("root", "read.paid_listing")["detail"]["rows"], 0);
        // A refused read leaves no entry claiming rows were read.
        let r = c
            .get(s(&format!("/api/v1/regions/320600/persons/{}", w.other)))
            .bearer_auth(&w.operator)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    })
    .await;
}

/// Issue 10, defect 12: the count lives in the database, so two servers on one database share it;
/// 20 failures from one address stop that address for every account.
#[tokio::test]
async fn two_servers_on_one_database_share_the_account_and_address_limits() {
    yibao_tests::on_each_test_db(|db| async move {
        let w = world(db.storage.clone()).await;
        let url = yibao_storage::DatabaseUrl::parse(&db.url).unwrap();
        let second_storage = yibao::storage::open_storage(&url).await.unwrap();
        let second = TestServer::start(second_storage, clock(), ServerSettings::default()).await;
        // Account: 3 failures here and 2 there, then the right password is refused on both.
        for (server, n) in [(&w.server, 3), (&second, 2)] {
            for _ in 0..n {
                let r = sign_in(server, "op1", "not-the-password").await;
                assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
            }
        }
        for server in [&w.server, &second] {
            let r = sign_in(server, "op1", "station-password-1").await;
            assert_eq!(
                code_of(r).await,
                (StatusCode::TOO_MANY_REQUESTS, "LOGIN_THROTTLED".into())
            );
        }
        // A success forgets an account's failures.
        for _ in 0..4 {
            let r = sign_in(&second, "aud", "not-the-password").await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        }
        assert_eq!(
            sign_in(&w.server, "aud", "station-password-1")
                .await
                .status(),
            StatusCode::OK
        );
        assert_eq!(
            sign_in(&second, "aud", "not-the-password").await.status(),
            StatusCode::UNAUTHORIZED
        );
        // Address: 5 + 5 failures so far from 127.0.0.1; 10 more on unknown users fill its 20.
        for i in 0..10 {
            let server = if i % 2 == 0 { &w.server } else { &second };
            let r = sign_in(server, &format!("ghost{i}"), "not-the-password").await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
        }
        let r = sign_in(&second, "root", "admin-password-1").await;
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "LOGIN_THROTTLED", "{body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("本机地址15分钟内登录失败已达20次"),
            "{body}"
        );
        let unknown = db
            .storage
            .list_audit(200)
            .await
            .unwrap()
            .into_iter()
            .filter(|a| {
                a.entry.action == "staff.login_failed" && a.entry.detail["reason"] == "unknown_user"
            })
            .count();
        assert_eq!(unknown, 10);
    })
    .await;
}

async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(f);
    }
    let mut out = Vec::with_capacity(set.len());
    // Poll them all concurrently on this task.
    let mut pinned: Vec<_> = set.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if done[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => done[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.extend(done.into_iter().map(|d| d.expect("done")));
    out
}

/// The message of an error answer, checked for English from serde or axum.
async fn chinese_message(r: reqwest::Response, status: StatusCode) -> String {
    assert_eq!(r.status(), status);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "INVALID_REQUEST", "{body}");
    let message = body["message"].as_str().unwrap().to_owned();
    for english in [
        "Failed",
        "missing",
        "invalid",
        "expected",
        "deserialize",
        "Cannot parse",
    ] {
        assert!(!message.contains(english), "English in {message:?}");
    }
    message
}

/// Issue 10, defect 11: a body, query or path that does not deserialize is answered in Chinese,
/// naming the field and what is wrong, never with serde's English.
#[tokio::test]
async fn malformed_admin_requests_name_the_field_in_chinese() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let c = &w.server.client;
        let login = w.server.url("/api/v1/auth/login");
        let r = c
            .post(&login)
            .json(&json!({"username": "root"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            chinese_message(r, StatusCode::BAD_REQUEST).await,
            "请求内容缺少必填字段 password"
        );
        let r = c
            .post(&login)
            .json(&json!({"username": 5, "password": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            chinese_message(r, StatusCode::BAD_REQUEST).await,
            "请求内容中的字段 username 类型不对：应为文本（字符串），收到的是整数"
        );
        let r = c
            .post(&login)
            .header("content-type", "application/json")
            .body("{\"username\": ")
            .send()
            .await
            .unwrap();
        let message = chinese_message(r, StatusCode::BAD_REQUEST).await;
        assert!(message.starts_with("请求内容不是有效的 JSON"), "{message}");
        // Query string: a missing parameter, and an integer that is not one.
        let r = c
            .post(w.server.url("/api/v1/rosters"))
            .bearer_auth(&w.admin)
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(
            chinese_message(r, StatusCode::BAD_REQUEST).await,
            "查询参数缺少必填字段 file_name"
        );
        let r = c
            .post(
                w.server
                    .url("/api/v1/rosters?file_name=a.csv&fee_year=2021x"),
            )
            .bearer_auth(&w.admin)
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(
            chinese_message(r, StatusCode::BAD_REQUEST).await,
            "查询参数中的字段 fee_year 应为整数"
        );
        // Path: a fee year that is not a number.
        let r = c
            .post(
                w.server
                    .url("/api/v1/regions/320600/fee-years/twenty/assessment"),
            )
            .bearer_auth(&w.admin)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let message = chinese_message(r, status).await;
        assert!(
            message == "请求地址中的参数 fee_year 应为整数"
                || message == "请求地址中的第 2 个参数应为整数",
            "{message}"
        );
    })
    .await;
}

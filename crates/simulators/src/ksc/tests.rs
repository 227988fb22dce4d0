//! Unit tests of the filter language, the masks and the `KSCBasic` parser.

use super::filter::{Filter, Op, parse};
use super::*;

fn row(host: &str, status: i64) -> Map<String, Value> {
    HostRec {
        hostname: host.into(),
        name: format!("{host}-dn"),
        status,
        mask: 0x80,
        group: 0,
        last_visible: "2024-05-01T10:00:00Z".parse().unwrap(),
        wks_status: wks_status::DEFAULT,
        rtp_state: 4,
    }
    .to_params()
}

#[test]
fn filter_language() {
    let now: DateTime<Utc> = "2024-05-01T12:00:00Z".parse().unwrap();
    let r = row("abc-1", 1);
    let t = |f: &str| parse(f).unwrap().eval(&r, now).unwrap();
    assert!(t("(KLHST_WKS_HOSTNAME=\"*\")"));
    assert!(t("(KLHST_WKS_HOSTNAME = \"abc*\")"));
    assert!(!t("(KLHST_WKS_HOSTNAME=\"x*\")"));
    assert!(t("(&(KLHST_WKS_STATUS_ID<>0)(KLHST_WKS_DN=\"ABC-1-DN\"))"));
    assert!(t("(|(KLHST_WKS_STATUS_ID=2)(KLHST_WKS_STATUS_ID =\"1\"))"));
    assert!(t("(!(KLHST_WKS_STATUS_ID=0))"));
    assert!(t("(KLHST_WKS_STATUS_MASK>127)"));
    assert!(!t("(KLHST_WKS_STATUS_MASK<128)"));
    assert!(t("(KLHST_WKS_LAST_VISIBLE > CURTIME(-86400))"));
    assert!(!t("(KLHST_WKS_LAST_VISIBLE > \"2024-05-01T11:00:00Z\")"));
    assert_eq!(
        parse("(KLHST_WKS_GROUPID=5)").unwrap(),
        Filter::Cmp { attr: "KLHST_WKS_GROUPID".into(), op: Op::Eq, value: "5".into() }
    );
    for bad in
        ["", "KLHST_WKS_DN=1", "(KLHST_WKS_OS_NAME=\"x\")", "(KLHST_WKS_STATUS&1<>0)", "(&)", "(KLHST_WKS_DN=\"x\""]
    {
        assert!(parse(bad).is_err(), "{bad} should be rejected");
    }
    assert!(parse("(KLHST_WKS_STATUS_ID=abc)").unwrap().eval(&r, now).is_err());
}

#[test]
fn masks_and_codes() {
    let (c, w) = default_masks();
    assert_eq!(c & w, 0);
    assert_eq!(c | w, 0xF_FFFF);
    assert_eq!(description_bit("license_expired"), Some(9));
    assert_eq!(description_bit("unknown:25"), Some(25));
    assert_eq!(description_bit("nope"), None);
    assert_eq!(
        parse_kscbasic("KSCBasic user=\"YQ==\", pass=\"Yg==\", domain=\"\", internal=\"1\""),
        Some(("a".into(), "b".into()))
    );
    assert_eq!(parse_kscbasic("Basic abc"), None);
}

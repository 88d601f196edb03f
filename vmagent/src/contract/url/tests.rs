use super::*;

fn err(s: &str) -> UrlRuleError {
    match oidc_issuer_url(s) {
        Ok(u) => panic!("{s:?} was accepted as {u}"),
        Err(e) => e,
    }
}

#[test]
fn accepts_real_issuers_as_written() {
    for good in [
        "https://auth.example.com",
        "https://auth.example.com/",
        "https://auth.example.com:8443",
        "https://auth.example.com:443",
        "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0",
        "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123",
        "https://keycloak.example.com/realms/main",
        "https://dev-123.okta.com/oauth2/default",
        "https://oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE",
        "https://xn--bcher-kva.example",
        "https://10.0.0.1:8443/dex",
        "https://[fd00::1]:5556",
        "https://issuer",
    ] {
        let u = oidc_issuer_url(good).unwrap_or_else(|e| panic!("{good:?}: {e}"));
        assert_eq!(u.scheme(), "https");
        assert_eq!(service_account_issuer_url(good).as_ref(), Ok(&u));
    }
}

#[test]
fn refuses_what_kube_apiserver_refuses() {
    assert_eq!(err(""), UrlRuleError::Empty);
    for s in [
        "http://auth.example.com",
        "HTTPS://auth.example.com",
        "Https://auth.example.com",
        "auth.example.com",
        "https:/auth.example.com",
        " https://auth.example.com",
    ] {
        assert_eq!(err(s), UrlRuleError::NotHttps, "{s}");
    }
    for s in [
        "https://user@auth.example.com",
        "https://user:pw@auth.example.com/x",
        "https://@auth.example.com",
    ] {
        assert_eq!(err(s), UrlRuleError::UserInfo, "{s}");
    }
    for s in [
        "https://auth.example.com?x=1",
        "https://auth.example.com/a?",
    ] {
        assert_eq!(err(s), UrlRuleError::Query, "{s}");
    }
    for s in ["https://auth.example.com#x", "https://auth.example.com/#"] {
        assert_eq!(err(s), UrlRuleError::Fragment, "{s}");
    }
    for s in ["https://", "https:///auth.example.com", "https://:443/"] {
        assert_eq!(err(s), UrlRuleError::NoHost, "{s}");
    }
}

#[test]
fn refuses_characters_outside_the_set() {
    for (s, ch, part) in [
        ("https://auth.example.com/~user", '~', "path"),
        ("https://auth.example.com/a%2Fb", '%', "path"),
        ("https://auth.example.com/a b", ' ', "path"),
        ("https://auth.example.com/a@b", '@', "path"),
        ("https://auth.example.com/a+b", '+', "path"),
        ("https://auth.example.com/a\\b", '\\', "path"),
        ("https://auth.example.com/[x]", '[', "path"),
        ("https://auth.example.com/é", 'é', "path"),
        ("https://bücher.example", 'ü', "host"),
        ("https://auth.example.com\n", '\n', "host"),
        ("https://auth\texample.com", '\t', "host"),
    ] {
        assert_eq!(err(s), UrlRuleError::Char { ch, part }, "{s}");
    }
}

#[test]
fn refuses_spellings_a_parser_would_rewrite() {
    assert_eq!(
        err("https://Auth.Example.com"),
        UrlRuleError::HostCase {
            host: "Auth.Example.com".into()
        }
    );
    for (s, parsed) in [
        (
            "https://auth.example.com/a/../b",
            "https://auth.example.com/b",
        ),
        ("https://auth.example.com/./b", "https://auth.example.com/b"),
        ("https://auth.example.com/a/..", "https://auth.example.com/"),
        ("https://1.2.3", "https://1.2.0.3/"),
        ("https://0x7f.0.0.1", "https://127.0.0.1/"),
        ("https://[0:0::1]", "https://[::1]/"),
    ] {
        assert_eq!(
            err(s),
            UrlRuleError::NotAsWritten {
                parsed: parsed.into()
            },
            "{s}"
        );
    }
    for (s, port) in [
        ("https://auth.example.com:", ""),
        ("https://auth.example.com:0", "0"),
        ("https://auth.example.com:0443", "0443"),
    ] {
        assert_eq!(err(s), UrlRuleError::Port { port: port.into() }, "{s}");
    }
    assert!(matches!(
        err("https://auth.example.com:65536"),
        UrlRuleError::Parse { .. }
    ));
    for s in [
        "https://auth_1.example.com",
        "https://-auth.example.com",
        "https://auth..example.com",
        "https://auth.example.com.",
    ] {
        assert!(
            matches!(
                err(s),
                UrlRuleError::Host { .. } | UrlRuleError::Parse { .. }
            ),
            "{s}: {}",
            err(s)
        );
    }
    let long = format!("https://auth.example.com/{}", "a".repeat(MAX_ISSUER_LEN));
    assert_eq!(
        err(&long),
        UrlRuleError::TooLong {
            len: MAX_ISSUER_LEN + 25
        }
    );
}

#[test]
fn messages_say_what_to_write() {
    assert!(err("HTTPS://a.example").to_string().contains("https://"));
    assert!(
        err("https://u@a.example")
            .to_string()
            .contains("remove everything up to the @")
    );
    let e = err("https://a.example/a/../b").to_string();
    assert!(e.contains("https://a.example/b"), "{e}");
    let e = err("https://a.example:99999");
    assert!(std::error::Error::source(&e).is_some(), "{e}");
}

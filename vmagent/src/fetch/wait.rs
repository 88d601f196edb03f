//! Wait for TCP reachability of an address, as first boot waits for the Nstance registration
//! address before downloading.

use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("--wait-for {0:?} is not HOST:PORT (use host:port, 10.0.0.5:8990 or [fd00::5]:8990)")]
    BadAddress(String),
    #[error("{addr} was not reachable within {}s ({attempts} attempts; last error: {last})", waited.as_secs())]
    Timeout {
        addr: String,
        waited: Duration,
        attempts: u32,
        last: String,
    },
}

/// Split `host:port`, `[v6]:port` or (like upstream, at the last colon) `v6:port`.
pub fn parse_host_port(s: &str) -> Result<(String, u16), WaitError> {
    let bad = || WaitError::BadAddress(s.to_string());
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once("]:").ok_or_else(bad)?;
        (h, p)
    } else {
        s.rsplit_once(':').ok_or_else(bad)?
    };
    if host.is_empty() || host.contains(['[', ']', '/', ' ']) {
        return Err(bad());
    }
    let port: u16 = port.parse().map_err(|_| bad())?;
    if port == 0 {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

/// Delay before attempt `n + 1` (n starts at 1): 1 s, 2 s, 4 s, 8 s, then 15 s.
pub fn delay_after(attempt: u32) -> Duration {
    Duration::from_secs(match attempt {
        1 => 1,
        2 => 2,
        3 => 4,
        4 => 8,
        _ => 15,
    })
}

/// Try to connect until it works or `timeout` passes, with a log line per failed attempt.
/// `scale` shrinks the delays (1.0 in production; tests use less).
pub async fn wait_for(addr: &str, timeout: Duration, scale: f64) -> Result<(), WaitError> {
    let (host, port) = parse_host_port(addr)?;
    let start = Instant::now();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let last = match tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::TcpStream::connect((host.as_str(), port)),
        )
        .await
        {
            Ok(Ok(_)) => {
                log::info!(addr = addr, attempts = attempt; "{addr} is reachable (attempt {attempt})");
                return Ok(());
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => "connect timed out after 5s".to_string(),
        };
        let delay = delay_after(attempt).mul_f64(scale);
        if start.elapsed() + delay > timeout {
            return Err(WaitError::Timeout {
                addr: addr.to_string(),
                waited: start.elapsed(),
                attempts: attempt,
                last,
            });
        }
        log::info!(addr = addr, attempt = attempt; "waiting for {addr}: attempt {attempt}: {last}; next try in {:.1}s", delay.as_secs_f64());
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses() {
        assert_eq!(
            parse_host_port("10.0.0.5:8990").unwrap(),
            ("10.0.0.5".into(), 8990)
        );
        assert_eq!(
            parse_host_port("[fd00::5]:8990").unwrap(),
            ("fd00::5".into(), 8990)
        );
        assert_eq!(
            parse_host_port("fd00::5:8990").unwrap(),
            ("fd00::5".into(), 8990)
        );
        assert_eq!(
            parse_host_port("nstance.internal:1").unwrap(),
            ("nstance.internal".into(), 1)
        );
        for bad in [
            "",
            "host",
            ":80",
            "host:",
            "host:0",
            "host:70000",
            "[fd00::5]8990",
            "[]:1",
        ] {
            assert!(parse_host_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn delays_are_bounded() {
        let d: Vec<_> = (1..=7).map(|n| delay_after(n).as_secs()).collect();
        assert_eq!(d, [1, 2, 4, 8, 15, 15, 15]);
    }

    #[tokio::test]
    async fn waits_until_a_listener_appears() {
        // Reserve a port, free it, and bind it again after a moment.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let a2 = addr.clone();
        let binder = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            let l = std::net::TcpListener::bind(&a2).unwrap();
            let _ = l.accept();
        });
        let start = Instant::now();
        wait_for(&addr, Duration::from_secs(10), 0.1).await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(100));
        binder.join().unwrap();
    }

    #[tokio::test]
    async fn times_out_with_the_last_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = wait_for(
            &format!("127.0.0.1:{port}"),
            Duration::from_millis(300),
            0.05,
        )
        .await
        .unwrap_err();
        match err {
            WaitError::Timeout { attempts, last, .. } => {
                assert!(attempts >= 2, "{attempts}");
                assert!(last.to_lowercase().contains("refused"), "{last}");
            }
            other => panic!("{other}"),
        }
    }
}

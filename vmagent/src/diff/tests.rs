use std::time::{Duration, Instant};

use super::*;

/// `n` lines of an `/etc/hosts`, each naming a different host.
fn hosts(n: usize, tag: &str) -> String {
    (0..n)
        .map(|i| {
            format!(
                "10.{}.{}.{} host-{i}-{tag}.example.internal\n",
                i >> 16,
                (i >> 8) & 255,
                i & 255
            )
        })
        .collect()
}

/// Runs the script on `old` -> `new` and checks it: every removed range lies in `old` and every
/// added one in `new`, in order and without overlap, and what is left of both is the same
/// sequence. Returns the number of unchanged lines.
fn check_script(old: &[&str], new: &[&str], budget: Duration) -> usize {
    let (mut gone_a, mut gone_b) = (vec![false; old.len()], vec![false; new.len()]);
    let (mut next_a, mut next_b) = (0, 0);
    script(
        old,
        new,
        Instant::now().checked_add(budget),
        |sign, range| {
            let (gone, next) = if sign == '-' {
                (&mut gone_a, &mut next_a)
            } else {
                (&mut gone_b, &mut next_b)
            };
            assert!(
                range.start >= *next && range.end <= gone.len(),
                "{sign} {range:?} out of order"
            );
            *next = range.end;
            gone[range].fill(true);
        },
    );
    let kept = |lines: &[&str], gone: &[bool]| -> Vec<String> {
        lines
            .iter()
            .zip(gone)
            .filter(|(_, g)| !**g)
            .map(|(l, _)| l.to_string())
            .collect()
    };
    let (kept_a, kept_b) = (kept(old, &gone_a), kept(new, &gone_b));
    assert_eq!(kept_a, kept_b, "the unchanged lines differ");
    kept_a.len()
}

/// The longest common subsequence of two small line lists (the exact reference).
fn lcs_len(a: &[&str], b: &[&str]) -> usize {
    let mut row = vec![0usize; b.len() + 1];
    for x in a {
        let mut diag = 0;
        for (j, y) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = if x == y { diag + 1 } else { up.max(row[j]) };
            diag = up;
        }
    }
    row[b.len()]
}

#[test]
fn line_diff_shows_only_changes() {
    assert_eq!(line_diff("a\nb\nc\n", "a\nB\nc\nd\n"), "-b\n+B\n+d\n");
    assert_eq!(line_diff("", "x\n"), "+x\n");
    assert_eq!(line_diff("x\n", ""), "-x\n");
    assert_eq!(line_diff("same\n", "same\n"), "");
    assert_eq!(line_diff("", ""), "");
}

#[test]
fn a_changed_block_shows_its_removals_first() {
    assert_eq!(
        line_diff("a\nb\nc\nd\n", "a\nX\nY\nZ\nd\n"),
        "-b\n-c\n+X\n+Y\n+Z\n"
    );
    assert_eq!(line_diff("1\n2\n3\n", "9\n8\n"), "-1\n-2\n-3\n+9\n+8\n");
}

#[test]
fn small_diffs_are_minimal_and_valid() {
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..500 {
        let text = |rng: &mut fastrand::Rng| -> String {
            (0..rng.usize(0..30))
                .map(|_| format!("{}\n", rng.u8(0..5)))
                .collect()
        };
        let (old, new) = (text(&mut rng), text(&mut rng));
        let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
        let same = check_script(&a, &b, DEADLINE);
        assert_eq!(same, lcs_len(&a, &b), "not minimal: {old:?} -> {new:?}");
        // The printed diff has one line per changed line.
        let diff = diff_with(&old, &new, usize::MAX, DEADLINE);
        assert_eq!(diff.lines().count(), a.len() + b.len() - 2 * same, "{diff}");
    }
}

#[test]
fn output_is_capped_with_a_count_of_what_was_left_out() {
    let old: String = (0..300).map(|i| format!("old {i}\n")).collect();
    let new: String = (0..300).map(|i| format!("new {i}\n")).collect();
    let diff = line_diff(&old, &new);
    let lines: Vec<&str> = diff.lines().collect();
    assert_eq!(lines.len(), MAX_SHOWN + 1, "{diff}");
    assert!(lines[..MAX_SHOWN].iter().all(|l| l.starts_with("-old ")));
    assert_eq!(
        lines[MAX_SHOWN],
        "... 400 more changed lines not shown (at most 200 per file)"
    );
    // Exactly at the cap: nothing is left out, no closing line.
    let diff = diff_with("a\nb\n", "c\n", 3, DEADLINE);
    assert_eq!(diff, "-a\n-b\n+c\n");
    let diff = diff_with("a\nb\n", "c\n", 2, DEADLINE);
    assert_eq!(
        diff,
        "-a\n-b\n... 1 more changed lines not shown (at most 2 per file)\n"
    );
}

/// A big /etc/hosts with the managed block appended and one host changed: the diff is exact
/// and quick, whatever the size of the file.
#[test]
fn a_large_file_with_few_changes_gives_the_exact_diff() {
    let old = hosts(100_000, "a");
    let new = old.replacen("host-500-a.", "host-500-b.", 1)
        + "# BEGIN podplane managed kube-apiserver\n127.0.0.1 kube-apiserver.podplane.internal\n# END podplane managed kube-apiserver\n";
    let started = Instant::now();
    let diff = line_diff(&old, &new);
    assert_eq!(
        diff,
        "-10.0.1.244 host-500-a.example.internal\n+10.0.1.244 host-500-b.example.internal\n\
         +# BEGIN podplane managed kube-apiserver\n+127.0.0.1 kube-apiserver.podplane.internal\n\
         +# END podplane managed kube-apiserver\n"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

/// Two 50,000-line texts that share only every 1,000th line: an O(n·m) table would need
/// 10 GB here. The diff must finish in seconds (the deadline bounds the search) and print at
/// most MAX_SHOWN lines, then the count of the rest.
#[test]
fn two_large_unrelated_texts_are_diffed_quickly_and_capped() {
    let old = hosts(50_000, "old");
    let new: String = old
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i % 1000 == 0 {
                format!("{l}\n")
            } else {
                format!("{}\n", l.replace("-old.", "-new."))
            }
        })
        .collect();
    let started = Instant::now();
    let diff = line_diff(&old, &new);
    let took = started.elapsed();
    assert!(took < DEADLINE + Duration::from_secs(8), "took {took:?}");
    let lines: Vec<&str> = diff.lines().collect();
    assert_eq!(
        lines.len(),
        MAX_SHOWN + 1,
        "{}",
        &diff[diff.len().saturating_sub(500)..]
    );
    assert_eq!(
        &lines[..3],
        [
            "-10.0.0.1 host-1-old.example.internal",
            "-10.0.0.2 host-2-old.example.internal",
            "-10.0.0.3 host-3-old.example.internal"
        ]
    );
    assert!(
        lines[..MAX_SHOWN]
            .iter()
            .all(|l| l.starts_with('-') || l.starts_with('+'))
    );
    // 49,950 lines out and 49,950 in: all but MAX_SHOWN left out.
    assert_eq!(
        lines[MAX_SHOWN],
        format!(
            "... {} more changed lines not shown (at most {MAX_SHOWN} per file)",
            99_900 - MAX_SHOWN
        )
    );
}

/// Interleaved changes (every other line differs) make Myers' search quadratic in time; with
/// the deadline already gone the diff is still a valid script and says it was approximated.
#[test]
fn past_the_deadline_the_script_is_coarser_but_valid() {
    let old: String = (0..20_000).map(|i| format!("{i}\n")).collect();
    let new: String = (0..20_000)
        .map(|i| {
            if i % 2 == 0 {
                format!("{i}\n")
            } else {
                format!("x{i}\n")
            }
        })
        .collect();
    let started = Instant::now();
    let diff = diff_with(&old, &new, usize::MAX, Duration::ZERO);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let (body, note) = diff.trim_end().rsplit_once('\n').unwrap();
    assert!(note.starts_with("... (diff took longer than 0 s"), "{note}");
    assert!(
        body.lines()
            .all(|l| l.starts_with('-') || l.starts_with('+')),
        "{body}"
    );
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    check_script(&a, &b, Duration::ZERO);
    // With time, it is the exact diff: 10,000 lines out, 10,000 in.
    assert_eq!(check_script(&a, &b, Duration::from_secs(60)), 10_000);
    let diff = diff_with(&old, &new, usize::MAX, Duration::from_secs(60));
    assert_eq!(diff.lines().count(), 20_000);
}

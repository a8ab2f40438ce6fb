//! The review forms of the published default-matrix run, where their
//! readers paste them: the email form within a list reply's 75 columns and
//! 200 lines, the Markdown within a GitHub comment (and rendered by a
//! CommonMark+GFM renderer), each opening with the conclusion. No guest
//! boots here: the published run is the input.

mod common;
use common::*;
use std::path::PathBuf;

fn published() -> PathBuf {
    let dir = root().join("results/published");
    let mut runs: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    runs.sort();
    runs.pop().expect("a published run")
}

fn report(format: &str) -> String {
    let o = bounce().arg("report").arg(published()).args(["--format", format]).output().unwrap();
    assert!(o.status.code().is_some(), "{o:?}");
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn the_email_form_fits_a_list_reply_and_opens_with_the_conclusion() {
    let text = report("email");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() <= 200, "{} lines:\n{text}", lines.len());
    for l in &lines {
        assert!(l.len() <= 75 && l.is_ascii(), "too wide or not ASCII: {l:?}");
    }
    // The run's identity, then the conclusion before any grid or table.
    let at = lines.iter().position(|l| l.starts_with("Correctness: ")).expect(&text);
    assert!(at < 20 && !lines[..at].iter().any(|l| l.contains("gated metric")), "{text}");
    // Expected failures named with their reasons, a reproducer, and where
    // the rest is.
    assert!(text.contains("Expected failures (declared in the matrix, with the reason):"), "{text}");
    assert!(text.contains("\nReproduce:\n  bounce matrix --matrix "), "{text}");
    assert!(text.contains("report.html in the"), "{text}");
    // What three boots cannot decide is said, with the boots that would.
    assert!(text.contains("cannot be decided with 3 boots a side"), "{text}");
    assert!(text.contains("boots a side would"), "{text}");
}

#[test]
fn the_markdown_fits_a_comment_renders_and_opens_with_the_conclusion() {
    let md = report("markdown");
    assert!(md.chars().count() <= 60_000, "{} characters", md.chars().count());
    let body: Vec<&str> = md.lines().filter(|l| !l.is_empty()).collect();
    assert!(body[0].starts_with("## bounce run "), "{md}");
    // After the title (and a dirty harness's warning), the conclusion.
    let at = body.iter().position(|l| l.starts_with("Correctness: ")).expect(&md);
    assert!(at <= 2 && !body[..at].iter().any(|l| l.starts_with('|') || l.starts_with("```")), "{md}");
    // Decided rows in narrow tables: no table row of more than 7 columns
    // outside the collapsed details.
    let open = md.split("<details>").next().unwrap();
    for l in open.lines().filter(|l| l.starts_with('|')) {
        assert!(l.matches('|').count() - 1 <= 7, "{l}");
    }
    assert!(md.contains("### Expected failures"), "{md}");
    let path = std::env::temp_dir().join(format!("bounce-review-{}.md", std::process::id()));
    std::fs::write(&path, &md).unwrap();
    const RENDER: &str = r#"
import sys
from markdown_it import MarkdownIt
html = MarkdownIt("commonmark").enable("table").render(open(sys.argv[1]).read())
assert "<table>" in html and "<h2>" in html, html[:2000]
assert "<details>" in html
"#;
    let o =
        std::process::Command::new(python_with("markdown-it-py")).arg("-c").arg(RENDER).arg(&path).output().unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

//! Patch series, as reviewers receive them: an mbox saved from the list (or
//! fetched with b4), a directory of `git format-patch` files, or a quilt
//! `series` file. Split and read with git's own mail tools, applied in
//! order with `git apply` (git-am semantics without needing a repository),
//! and undone exactly, so one source tree serves every series and the
//! build directory stays warm: only what a patch touches is rebuilt.
//!
//! Here: reading the formats. `tree`: putting a series on a tree and
//! taking it off.

mod tree;
pub use tree::{rejection, PatchableTree};

use crate::failure::{Classify, Failure, Result};
use crate::host::cmd;

use std::path::{Path, PathBuf};
use std::process::Command;

/// One patch of a series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    /// Where it came from: the file, or `mbox#N` for the Nth message.
    pub origin: String,
    pub subject: String,
    /// The whole message as it will be applied (git apply skips the mail
    /// part and reads the diff).
    pub text: String,
    /// `-pN`: 1 for git, quilt series may say otherwise.
    pub strip: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    /// A short name for variant names and reports (the file's stem).
    pub name: String,
    /// The file or directory it was read from.
    pub origin: PathBuf,
    pub patches: Vec<Patch>,
    /// A variant's own series this one was put on top of, applied first:
    /// its origin and how many of `patches` lead from it (messages number
    /// each series' patches apart).
    pub under: Option<(PathBuf, usize)>,
}

#[derive(Debug, Clone)]
pub enum SeriesSource {
    Path(PathBuf),
}

impl Series {
    pub fn load(src: &SeriesSource) -> Result<Series> {
        let SeriesSource::Path(path) = src;
        let input = |m: String| Failure::input(format!("{}: {m}", path.display()));
        let meta = std::fs::metadata(path).map_err(|e| input(format!("cannot read the series: {e}")))?;
        let mut patches = Vec::new();
        if meta.is_dir() {
            let series_file = path.join("series");
            if series_file.is_file() {
                patches = quilt(&series_file)?;
            } else {
                let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                    .map_err(|e| input(e.to_string()))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "patch" || x == "diff" || x == "eml"))
                    .collect();
                files.sort();
                for f in files {
                    patches.extend(messages(&f)?);
                }
            }
        } else if path.file_name().is_some_and(|n| n == "series") {
            patches = quilt(path)?;
        } else {
            patches = messages(path)?;
        }
        if patches.is_empty() {
            return Err(input("no patches found (expected an mbox, patch files, or a quilt `series` file)".into()));
        }
        let stem = path.file_name().and_then(|n| n.to_str()).unwrap_or("series");
        let stem = if stem == "series" {
            path.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str()).unwrap_or(stem)
        } else {
            stem
        };
        let stem = stem.trim_end_matches(".mbox").trim_end_matches(".mbx").trim_end_matches(".patch");
        Ok(Series { name: crate::paths::sanitize(stem), origin: path.clone(), patches, under: None })
    }

    /// `self` on top of `own` (a variant's own series): one series to
    /// apply, named after `self`, that still tells whose patch is whose.
    pub fn on_top_of(self, own: Series) -> Series {
        let under = Some((own.origin, own.patches.len()));
        let mut patches = own.patches;
        patches.extend(self.patches);
        Series { name: self.name, origin: self.origin, patches, under }
    }

    /// Where patch `i` comes from: its series' file, its number there and
    /// that series' length.
    pub fn numbered(&self, i: usize) -> (&Path, usize, usize) {
        match &self.under {
            Some((own, n)) if i < *n => (own, i + 1, *n),
            Some((_, n)) => (&self.origin, i + 1 - n, self.patches.len() - n),
            None => (&self.origin, i + 1, self.patches.len()),
        }
    }

    /// The first `n` patches: what the tree looks like after patch `n`.
    pub fn prefix(&self, n: usize) -> Series {
        let mut s = self.clone();
        s.patches.truncate(n);
        s
    }

    /// Content hash of what gets applied, in order; part of the build key.
    pub fn hash(&self) -> String {
        let mut h = blake3::Hasher::new();
        for p in &self.patches {
            h.update(diff_part(&p.text).as_bytes());
            h.update(&p.strip.to_le_bytes());
            h.update(b"\0");
        }
        h.finalize().to_hex()[..20].to_string()
    }

    /// KCIDB's `patchset_hash`: sha256 over the newline-terminated sha256
    /// of each patch, in order (`sha256sum *.patch | cut -c-64 | sha256sum`).
    pub fn patchset_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut all = Sha256::new();
        for p in &self.patches {
            all.update(format!("{:x}\n", Sha256::digest(p.text.as_bytes())));
        }
        format!("{:x}", all.finalize())
    }

    pub fn describe(&self) -> String {
        let subjects: Vec<String> = self.patches.iter().map(|p| format!("`{}`", p.subject)).collect();
        format!("{} ({} patches: {})", self.origin.display(), self.patches.len(), subjects.join(", "))
    }
}

/// From the first `diff --git`/`---` header on: what changes the tree. A
/// reworded commit message does not make a new kernel.
fn diff_part(text: &str) -> &str {
    let at = text.find("\ndiff --git ").or_else(|| text.find("\n--- ")).map(|i| i + 1).unwrap_or(0);
    &text[at..]
}

/// The messages of an mbox (or a single patch file), in order. Messages
/// without a diff are skipped when they are cover letters (`0/N`), and an
/// error otherwise: a series that silently loses a patch builds the wrong
/// kernel.
fn messages(file: &Path) -> Result<Vec<Patch>> {
    let text = std::fs::read_to_string(file).input(|| format!("{}: cannot read", file.display()))?;
    let mut chunks = Vec::new();
    if !text.starts_with("From ") {
        // A bare diff, or a message without an mbox "From " line: one patch.
        chunks.push(text.clone());
    } else {
        let tmp = tempfile::tempdir().infra(|| "cannot make a temporary directory".into())?;
        let tmp = tmp.path();
        let out = cmd::stdout(Command::new("git").arg("mailsplit").arg(format!("-o{}", tmp.display())).arg(file))
            .map_err(|e| Failure::input(format!("{}: not a readable mbox: {}", file.display(), e.message)))?;
        let count: usize = out.trim().parse().unwrap_or(0);
        for i in 1..=count {
            let p = tmp.join(format!("{i:04}"));
            chunks.push(std::fs::read_to_string(&p).infra(|| p.display().to_string())?);
        }
    }
    let many = chunks.len() > 1;
    let mut out = Vec::new();
    for (i, chunk) in chunks.into_iter().enumerate() {
        let origin = if many { format!("{}#{}", file.display(), i + 1) } else { file.display().to_string() };
        let subject = subject(&chunk)
            .unwrap_or_else(|| file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        if !has_diff(&chunk) {
            if is_cover(raw_subject(&chunk)) {
                continue;
            }
            return Err(Failure::input(format!("{origin}: `{subject}` contains no diff")));
        }
        out.push(Patch { origin, subject, text: chunk, strip: 1 });
    }
    Ok(out)
}

fn has_diff(text: &str) -> bool {
    text.lines().any(|l| l.starts_with("@@ -"))
}

/// The Subject header as sent, `[PATCH v2 0/7]` prefix and all.
fn raw_subject(message: &str) -> &str {
    message.lines().take_while(|l| !l.is_empty()).find_map(|l| l.strip_prefix("Subject: ")).unwrap_or("")
}

fn is_cover(subject: &str) -> bool {
    let s = subject.split(']').next().unwrap_or("");
    s.contains(" 0/") || s.contains("[0/") || s.contains(" 00/")
}

/// The subject as `git am` would commit it: `git mailinfo` drops the
/// `[PATCH v2 3/7]` prefix and unfolds the header.
fn subject(message: &str) -> Option<String> {
    let tmp = tempfile::tempdir().ok()?;
    let tmp = tmp.path();
    let input = tmp.join("in");
    std::fs::write(&input, message).ok()?;
    let mut c = Command::new("git");
    c.arg("mailinfo").arg(tmp.join("msg")).arg(tmp.join("patch"));
    let out = cmd::output_from(&mut c, std::fs::File::open(&input).ok()?.into(), cmd::QUICK).ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// A quilt `series` file: one patch file per line, `#` comments, an
/// optional `-pN` after the name.
fn quilt(series: &Path) -> Result<Vec<Patch>> {
    let dir = series.parent().unwrap_or(Path::new("."));
    let text = std::fs::read_to_string(series).input(|| format!("{}: cannot read", series.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let name = words.next().unwrap();
        let mut strip = 1;
        for w in words {
            strip = w.strip_prefix("-p").and_then(|n| n.parse().ok()).ok_or_else(|| {
                Failure::input(format!(
                    "{}:{}: unknown option `{w}` (quilt series take only -pN)",
                    series.display(),
                    i + 1
                ))
            })?;
        }
        let file = dir.join(name);
        if !file.is_file() {
            return Err(Failure::input(format!("{}:{}: no patch file {}", series.display(), i + 1, file.display())));
        }
        for mut p in messages(&file)? {
            p.strip = strip;
            out.push(p);
        }
    }
    Ok(out)
}

/// Fetch a series from lore with b4 into `dir`; returns the mbox.
pub fn fetch_b4(message_id: &str, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).infra(|| format!("cannot create {}", dir.display()))?;
    let name = crate::paths::sanitize(message_id.trim_matches(['<', '>']));
    let mut b4 = Command::new("b4");
    b4.arg("am").arg("-o").arg(dir).arg("-n").arg(&name).arg(message_id);
    if which::which("b4").is_err() {
        return Err(Failure::infra("cannot run b4: install it (`pip install b4` or apt-get install b4)"));
    }
    let out = crate::host::cmd::output(&mut b4, std::time::Duration::from_secs(600))?;
    let mbox = dir.join(format!("{name}.mbx"));
    if !out.status.success() || !mbox.exists() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = cmd::last_line(&err);
        return Err(Failure::infra(format!(
            "b4 could not fetch {message_id} ({last}); without a network to lore.kernel.org, save the series from your mail client as an mbox and pass --series PATH"
        )));
    }
    Ok(mbox)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::FailureClass;

    const PATCH1: &str = "From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001
From: A Dev <a@example.org>
Date: Mon, 1 Jan 2024 00:00:00 +0000
Subject: [PATCH 1/2] demo: add a line

Why it matters.

---
 a.txt | 1 +
 1 file changed, 1 insertion(+)

diff --git a/a.txt b/a.txt
--- a/a.txt
+++ b/a.txt
@@ -1,2 +1,3 @@
 one
+one and a half
 two
-- 
2.39.2

";
    const PATCH2: &str = "From 2222222222222222222222222222222222222222 Mon Sep 17 00:00:00 2001
From: A Dev <a@example.org>
Date: Mon, 1 Jan 2024 00:00:00 +0000
Subject: [PATCH 2/2] demo: add a file

---
diff --git a/b.txt b/b.txt
new file mode 100644
--- /dev/null
+++ b/b.txt
@@ -0,0 +1 @@
+new
-- 
2.39.2

";

    fn tree() -> (tempfile::TempDir, PatchableTree) {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("linux");
        std::fs::create_dir_all(&t).unwrap();
        std::fs::write(t.join("a.txt"), "one\ntwo\n").unwrap();
        (dir, PatchableTree::new(&t))
    }

    #[test]
    fn an_mbox_splits_into_subjects_and_applies_then_comes_off() {
        let (dir, t) = tree();
        let mbox = dir.path().join("demo.mbox");
        std::fs::write(&mbox, format!("{PATCH1}{PATCH2}")).unwrap();
        let s = Series::load(&SeriesSource::Path(mbox)).unwrap();
        assert_eq!(s.name, "demo");
        let subjects: Vec<&str> = s.patches.iter().map(|p| p.subject.as_str()).collect();
        assert_eq!(subjects, ["demo: add a line", "demo: add a file"]);
        t.checkout(Some(&s)).unwrap();
        assert_eq!(std::fs::read_to_string(t.path.join("a.txt")).unwrap(), "one\none and a half\ntwo\n");
        assert_eq!(std::fs::read_to_string(t.path.join("b.txt")).unwrap(), "new\n");
        assert_eq!(t.applied(), Some(s.hash()));
        // A prefix: the second patch comes off, the first stays.
        t.checkout(Some(&s.prefix(1))).unwrap();
        assert!(!t.path.join("b.txt").exists());
        assert!(std::fs::read_to_string(t.path.join("a.txt")).unwrap().contains("half"));
        t.checkout(None).unwrap();
        assert_eq!(std::fs::read_to_string(t.path.join("a.txt")).unwrap(), "one\ntwo\n");
        assert_eq!(t.applied(), None);
    }

    #[test]
    fn a_directory_and_a_quilt_series_give_the_same_patches() {
        let (dir, _) = tree();
        let d = dir.path().join("series-dir");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("0001-demo-add-a-line.patch"), PATCH1).unwrap();
        std::fs::write(d.join("0002-demo-add-a-file.patch"), PATCH2).unwrap();
        let from_dir = Series::load(&SeriesSource::Path(d.clone())).unwrap();
        std::fs::write(d.join("series"), "# quilt\n0001-demo-add-a-line.patch\n0002-demo-add-a-file.patch -p1\n")
            .unwrap();
        let from_quilt = Series::load(&SeriesSource::Path(d.join("series"))).unwrap();
        assert_eq!(from_dir.hash(), from_quilt.hash());
        assert_eq!(from_dir.patches.len(), 2);
        assert_eq!(from_dir.name, "series-dir");
    }

    #[test]
    fn a_patch_that_does_not_apply_names_patch_subject_and_hunk() {
        let (dir, t) = tree();
        std::fs::write(t.path.join("a.txt"), "uno\ndos\n").unwrap();
        let mbox = dir.path().join("demo.mbox");
        std::fs::write(&mbox, format!("{PATCH1}{PATCH2}")).unwrap();
        let s = Series::load(&SeriesSource::Path(mbox.clone())).unwrap();
        let e = t.checkout(Some(&s)).unwrap_err();
        assert_eq!(e.class, FailureClass::Input);
        assert!(
            e.message.starts_with(&format!("{}: patch 1/2 `demo: add a line` ({}#1) does not apply: a.txt:1: first rejected hunk `@@ -1,2 +1,3 @@`", mbox.display(), mbox.display())),
            "{}",
            e.message
        );
        // Nothing half-applied is left behind.
        assert_eq!(t.applied(), None);
        assert!(!t.path.join("b.txt").exists());
    }

    #[test]
    fn cover_letters_are_skipped_and_empty_patches_refused() {
        let (dir, _) = tree();
        let cover = "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\nFrom: A <a@b>\nSubject: [PATCH 0/2] demo series\n\nCover text.\n\n";
        let mbox = dir.path().join("with-cover.mbox");
        std::fs::write(&mbox, format!("{cover}{PATCH1}")).unwrap();
        assert_eq!(Series::load(&SeriesSource::Path(mbox.clone())).unwrap().patches.len(), 1);
        std::fs::write(&mbox, cover.replace("0/2", "1/2")).unwrap();
        let e = Series::load(&SeriesSource::Path(mbox)).unwrap_err();
        assert!(e.message.contains("contains no diff"), "{}", e.message);
    }

    #[test]
    fn reworded_messages_keep_the_hash() {
        let (dir, _) = tree();
        let a = dir.path().join("a.patch");
        std::fs::write(&a, PATCH1).unwrap();
        let b = dir.path().join("b.patch");
        std::fs::write(&b, PATCH1.replace("Why it matters.", "Reworded.")).unwrap();
        let h = |p: &Path| Series::load(&SeriesSource::Path(p.to_path_buf())).unwrap().hash();
        assert_eq!(h(&a), h(&b));
        std::fs::write(&b, PATCH1.replace("one and a half", "one and a third")).unwrap();
        assert_ne!(h(&a), h(&b));
    }

    #[test]
    fn the_patchset_hash_is_kcidb_s_shell_recipe() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("0001-a.patch"), PATCH1).unwrap();
        std::fs::write(dir.path().join("0002-b.patch"), PATCH1.replace("one and a half", "one and a third")).unwrap();
        let s = Series::load(&SeriesSource::Path(dir.path().to_path_buf())).unwrap();
        let o = Command::new("sh")
            .arg("-c")
            .arg("sha256sum *.patch | cut -c-64 | sha256sum | cut -c-64")
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(s.patchset_hash(), String::from_utf8_lossy(&o.stdout).trim());
    }
}

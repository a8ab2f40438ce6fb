//! A series on a source tree: applied patch by patch with `git apply`,
//! every touched file backed up first, and taken off exactly, so one tree
//! serves every series and the build directory stays warm.

use super::Series;
use crate::failure::{Classify, Failure, FailureClass, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What is applied to a source tree, and how to take it off again:
/// kept beside the tree, written before every change.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Applied {
    /// The hash of the applied series; None while applying (or pristine
    /// with nothing backed up).
    series: Option<String>,
    /// Tree-relative paths touched so far, and whether they existed.
    touched: Vec<(String, bool)>,
}

/// A source tree that patches go on and come off: the tree itself, a
/// directory of original copies of every file a patch touched, and the
/// record of what is applied.
pub struct PatchableTree {
    pub path: PathBuf,
    backup: PathBuf,
    state: PathBuf,
}

impl PatchableTree {
    pub fn new(path: &Path) -> PatchableTree {
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let parent = path.parent().unwrap_or(Path::new("."));
        PatchableTree {
            path: path.to_path_buf(),
            backup: parent.join(format!("{name}.backup")),
            state: parent.join(format!("{name}.applied.json")),
        }
    }

    fn read_state(&self) -> Applied {
        std::fs::read_to_string(&self.state).ok().and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default()
    }

    fn write_state(&self, a: &Applied) -> Result<()> {
        crate::paths::write_atomic(&self.state, serde_json::to_string(a).unwrap_or_default().as_bytes())
    }

    /// A file as the pristine tree has it, whatever series is on it now.
    pub fn pristine(&self, rel: &str) -> Result<String> {
        let state = self.read_state();
        let path = match state.touched.iter().find(|(t, _)| t == rel) {
            Some((_, true)) => self.backup.join("files").join(rel),
            Some((_, false)) => return Err(Failure::input(format!("{rel} is not in the pristine tree"))),
            None => self.path.join(rel),
        };
        std::fs::read_to_string(&path).infra(|| format!("cannot read {}", path.display()))
    }

    /// The hash of the series on the tree now (None: pristine).
    pub fn applied(&self) -> Option<String> {
        self.read_state().series
    }

    /// Put the tree in the state "pristine + `series`". The caller holds
    /// the build lock: nothing else reads the tree meanwhile.
    pub fn checkout(&self, series: Option<&Series>) -> Result<()> {
        let want = series.filter(|s| !s.patches.is_empty());
        let state = self.read_state();
        let want_hash = want.map(|s| s.hash());
        if state.series == want_hash && (want_hash.is_some() || state.touched.is_empty()) {
            return Ok(());
        }
        self.restore(state)?;
        let Some(series) = want else { return Ok(()) };
        let mut state = Applied::default();
        for (i, p) in series.patches.iter().enumerate() {
            let file = self.backup.join(format!("patch-{i}"));
            std::fs::write(&file, &p.text).infra(|| format!("cannot write {}", file.display()))?;
            if let Err(e) = self.check(series, i, &file) {
                self.restore(state)?;
                return Err(e);
            }
            for rel in self.touched_by(&file, p.strip)? {
                if state.touched.iter().any(|(t, _)| *t == rel) {
                    continue;
                }
                let src = self.path.join(&rel);
                let existed = src.exists();
                if existed {
                    let dst = self.backup.join("files").join(&rel);
                    std::fs::create_dir_all(dst.parent().unwrap())
                        .infra(|| format!("cannot create {}", dst.display()))?;
                    std::fs::copy(&src, &dst).infra(|| format!("cannot back up {}", src.display()))?;
                }
                state.touched.push((rel, existed));
            }
            self.write_state(&state)?;
            self.git_apply(&file, p.strip, &[])
                .infra(|| format!("{}: `git apply` failed after its check passed", p.origin))?;
        }
        state.series = want_hash;
        self.write_state(&state)
    }

    /// Back to pristine: every touched file restored from its copy (with a
    /// new mtime, so make rebuilds what depends on it), created ones removed.
    fn restore(&self, state: Applied) -> Result<()> {
        for (rel, existed) in &state.touched {
            let dst = self.path.join(rel);
            if *existed {
                let src = self.backup.join("files").join(rel);
                if let Some(d) = dst.parent() {
                    std::fs::create_dir_all(d).infra(|| format!("cannot create {}", d.display()))?;
                }
                std::fs::copy(&src, &dst).map_err(|e| {
                    Failure::infra(format!(
                        "cannot restore {} from {} ({e}): the tree is damaged; delete {} and it is unpacked again",
                        dst.display(),
                        src.display(),
                        self.path.display()
                    ))
                })?;
            } else {
                let _ = std::fs::remove_file(&dst);
            }
        }
        let _ = std::fs::remove_dir_all(&self.backup);
        std::fs::create_dir_all(&self.backup).infra(|| format!("cannot create {}", self.backup.display()))?;
        self.write_state(&Applied::default())
    }

    fn git(&self) -> Command {
        let mut c = Command::new("git");
        // Never let git find a repository above the tree (a cache inside a
        // checkout): apply must work on these files, relative to the tree.
        c.current_dir(&self.path).env("GIT_CEILING_DIRECTORIES", self.path.parent().unwrap_or(Path::new("/")));
        c
    }

    fn git_apply(&self, patch: &Path, strip: u32, extra: &[&str]) -> std::result::Result<String, String> {
        let mut git = self.git();
        git.arg("apply").arg(format!("-p{strip}")).args(extra).arg(patch);
        let out = crate::host::cmd::output(&mut git, crate::host::cmd::LIMIT).map_err(|e| e.message)?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Paths a patch touches (both names of a rename).
    fn touched_by(&self, patch: &Path, strip: u32) -> Result<Vec<String>> {
        let out = self.git_apply(patch, strip, &["--numstat", "-z"]).map_err(Failure::infra)?;
        let mut paths = Vec::new();
        let mut fields = out.split('\0').peekable();
        while let Some(f) = fields.next() {
            if f.is_empty() {
                continue;
            }
            // "ADDED\tDELETED\tPATH", or "ADDED\tDELETED\t" then OLD, NEW.
            let mut parts = f.splitn(3, '\t');
            let (_, _, path) = (parts.next(), parts.next(), parts.next().unwrap_or(""));
            if path.is_empty() {
                paths.extend(fields.next().map(str::to_string));
                paths.extend(fields.next().map(str::to_string));
            } else {
                paths.push(path.to_string());
            }
        }
        Ok(paths)
    }

    /// Would patch `i` apply? If not, say which patch, which file and which
    /// hunk, as a reviewer needs to rebase it.
    fn check(&self, series: &Series, i: usize, file: &Path) -> Result<()> {
        let p = &series.patches[i];
        let Err(stderr) = self.git_apply(file, p.strip, &["--check", "-v"]) else {
            return Ok(());
        };
        let (origin, k, n) = series.numbered(i);
        let which = format!("{}: patch {k}/{n} `{}` ({}) does not apply", origin.display(), p.subject, p.origin);
        Err(Failure::new(FailureClass::Input, format!("{which}: {}", rejection(&stderr, &p.text, p.strip))))
    }
}

/// The first rejected hunk, from `git apply --check -v` and the patch.
pub fn rejection(stderr: &str, patch: &str, strip: u32) -> String {
    let failed = stderr.lines().find_map(|l| l.strip_prefix("error: patch failed: "));
    if let Some((file, line)) = failed.and_then(|f| f.rsplit_once(':')) {
        if let Some(h) = hunk(patch, file, line, strip) {
            return format!("{file}:{line}: first rejected hunk `{h}`");
        }
        return format!("{file}:{line}: hunk does not match");
    }
    stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .map(|l| l.trim_start_matches("error: ").to_string())
        .unwrap_or_else(|| stderr.trim().to_string())
}

/// The header of the hunk of `file` in `patch` whose old range starts at `line`.
fn hunk(patch: &str, file: &str, line: &str, strip: u32) -> Option<String> {
    let mut in_file = false;
    for l in patch.lines() {
        if let Some(p) = l.strip_prefix("--- ") {
            let p = p.split('\t').next().unwrap_or(p);
            let stripped: String = p.splitn(strip as usize + 1, '/').last().unwrap_or(p).to_string();
            in_file = stripped == file;
        } else if in_file && l.starts_with("@@ -") {
            let start = l[4..].split([',', ' ']).next().unwrap_or("");
            if start == line {
                return Some(l.to_string());
            }
        }
    }
    None
}

//! Labelled data sets read from CSV files: numeric features and one integer class label per
//! row, optionally gzip-compressed, with the normalisations and one-hot targets the
//! classification experiments use.
//!
//! The shipped `data/digits.csv.gz` (the UCI handwritten digits, 1797 rows of 64 pixels
//! `0..=16` and a label `0..=9`) loads with
//! `Dataset::load_csv(path, -1)`.

use std::io::Read;
use std::path::Path;

use localprop::error::{Error, Result};

/// The largest class label [`Dataset::load_csv`] accepts, so that one-hot targets stay
/// allocatable (`rows * (MAX_LABEL + 1)` values at most).
pub const MAX_LABEL: usize = 65_535;

/// How [`Dataset::normalize`] rescales the features (labels are never touched).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Normalize {
    /// Leave the features as they are.
    None,
    /// Divide every feature by the largest `|value|` over all features of the file (one
    /// factor for the whole file, so `0..=16` pixels become `0..=1`); if every feature is 0,
    /// nothing changes. The default.
    #[default]
    MaxAbs,
    /// The fixed affine map `v -> (v - min) / (max - min)`, taking `[min, max]` to `[0, 1]`
    /// (values outside `[min, max]` land outside `[0, 1]`; nothing is clamped). Needs finite
    /// `min < max`.
    Range {
        /// The value mapped to 0.
        min: f32,
        /// The value mapped to 1.
        max: f32,
    },
    /// Per column, subtract the mean and divide by the (population) standard deviation over
    /// the file's rows; a constant column has its standard deviation taken as 1.
    ZScore,
}

impl Normalize {
    /// Every normalisation's [`name`](Normalize::name), as experiment files write them.
    pub const NAMES: [&'static str; 4] = ["none", "max-abs", "z-score", "range"];

    /// The name used in experiment files.
    pub fn name(self) -> &'static str {
        Self::NAMES[match self {
            Normalize::None => 0,
            Normalize::MaxAbs => 1,
            Normalize::ZScore => 2,
            Normalize::Range { .. } => 3,
        }]
    }

    /// The normalisation called `name`, with `normalize_range = [min, max]` for `range` (and
    /// only for it; finite, `min < max`). The error names the key that is wrong.
    pub fn named(name: &str, range: Option<[f32; 2]>) -> Result<Normalize> {
        let normalize = match (name, range) {
            ("range", Some([min, max])) if min.is_finite() && max.is_finite() && max > min => {
                Normalize::Range { min, max }
            }
            ("range", Some([min, max])) => {
                return Err(Error::param("normalize_range", format!("[{min}, {max}]"), "finite min < max"));
            }
            ("range", None) => return Err(Error::param("normalize_range", "missing", "`range` needs `[min, max]`")),
            (_, Some(_)) if Self::NAMES.contains(&name) => {
                return Err(Error::param("normalize_range", "given", "only used with `normalize = \"range\"`"));
            }
            ("none", None) => Normalize::None,
            ("max-abs", None) => Normalize::MaxAbs,
            ("z-score", None) => Normalize::ZScore,
            _ => {
                return Err(Error::param(
                    "normalize",
                    format!("{name:?}"),
                    format!("one of {}", Self::NAMES.join(", ")),
                ));
            }
        };
        Ok(normalize)
    }
}

/// A labelled data set: `rows()` rows of `dim` features and one class label each.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Features, row-major: `[rows][dim]`.
    pub features: Vec<f32>,
    /// Features per row (the file's column count minus the label column).
    pub dim: usize,
    /// The class label of each row.
    pub labels: Vec<usize>,
    /// Number of classes: the largest label plus one.
    pub classes: usize,
    /// The file the data came from, as given to [`Dataset::load_csv`].
    pub path: String,
    /// CRC-32 (IEEE, Python's `zlib.crc32`) of the file's text, gunzipped: what a checkpoint
    /// records, so that `resume` can tell that the data changed (0 for data made in memory).
    pub text_crc32: u32,
}

/// The most bytes of CSV text a data set may have (after gunzipping): 1 GiB, or a quarter of
/// the memory budget ([`crate::budget::limit`]) where that is less.
pub fn max_data_bytes() -> u64 {
    let cap = 1u64 << 30;
    crate::budget::limit().map_or(cap, |(limit, _)| cap.min(limit / 4))
}

/// The bytes of `path` (a regular file), gunzipped when they start with the gzip magic
/// `1f 8b`; at most [`max_data_bytes`] either way, so that neither `/dev/zero` nor a small
/// archive that inflates to gigabytes can exhaust memory.
pub fn read_maybe_gz(path: &Path, shown: &str) -> Result<Vec<u8>> {
    let io = |source| Error::Io { path: shown.to_string(), source };
    let data = |message: String| Error::Data { path: shown.to_string(), message };
    let cap = max_data_bytes();
    let file = std::fs::File::open(path).map_err(io)?;
    if !file.metadata().map_err(io)?.is_file() {
        return Err(data("not a regular file".into()));
    }
    let read_capped = |reader: &mut dyn Read, what: &str| -> Result<Vec<u8>> {
        let mut out = Vec::new();
        reader.take(cap + 1).read_to_end(&mut out).map_err(|e| data(format!("{what}: {e}")))?;
        if out.len() as u64 > cap {
            return Err(data(format!(
                "{what} holds more than {} of text, the cap for a data set (a quarter of the memory budget, at most 1 GiB)",
                crate::budget::human(cap)
            )));
        }
        Ok(out)
    };
    let raw = read_capped(&mut std::io::BufReader::new(file), "the file")?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    read_capped(&mut flate2::read::MultiGzDecoder::new(raw.as_slice()), "the gzip data, inflated")
}

/// A field as a number, or `None` if it does not parse (non-finite values parse).
fn number(field: &str) -> Option<f64> {
    field.trim().parse::<f64>().ok()
}

impl Dataset {
    /// Reads a comma-separated file of numbers, one row per line, with the class label in
    /// column `label_column` (0-based; negative counts from the end, `-1` being the last
    /// column) and every other column, in order, a feature.
    ///
    /// * The file may be gzip-compressed: that is detected from its first two bytes
    ///   (`1f 8b`), not from its name.
    /// * Fields may be surrounded by spaces; blank lines are skipped; `\r\n` line ends are
    ///   accepted.
    /// * **Header:** the first non-blank line is taken as a header and skipped when at most
    ///   half of its fields parse as numbers (so `x1,x2,label` is a header); otherwise it is
    ///   data, and a non-number in it is an error like on any other line. A header must have
    ///   the same column count as the data.
    /// * Every row must have the same number of columns: a row that does not is an
    ///   [`Error::Data`] naming the file, its line and both counts.
    /// * A field that is not a number, or whose value is not finite as an `f32` (`nan`,
    ///   `inf`, `1e40`), is an [`Error::Data`] naming the line and the (1-based) column.
    /// * Labels must be non-negative integers no larger than [`MAX_LABEL`]; the number of
    ///   classes is the largest label plus one.
    /// * There must be at least one feature column and at least one data row.
    ///
    /// A `label_column` outside the file's columns is an [`Error::Param`]; an unreadable
    /// file is an [`Error::Io`].
    pub fn load_csv(path: &Path, label_column: isize) -> Result<Dataset> {
        let shown = path.display().to_string();
        let bad = |message: String| Error::Data { path: shown.clone(), message };
        let bytes = read_maybe_gz(path, &shown)?;
        let mut crc = flate2::Crc::new();
        crc.update(&bytes);
        let text_crc32 = crc.sum();

        let mut features = Vec::new();
        let mut labels = Vec::new();
        // (column count, label column, line of the first row) once the first row is seen.
        let mut shape: Option<(usize, usize, usize)> = None;
        let mut first = true;
        for (k, line) in bytes.split(|&b| b == b'\n').enumerate() {
            let line_no = k + 1;
            let line = std::str::from_utf8(line)
                .map_err(|e| bad(format!("line {line_no}: not valid UTF-8 text ({e})")))?
                .trim();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split(',').collect();
            let cols = fields.len();
            let (want, label, first_line) = match shape {
                Some(s) => s,
                None => {
                    if cols < 2 {
                        return Err(bad(format!(
                            "line {line_no}: {cols} column; need at least one feature column and a label column"
                        )));
                    }
                    let label = if label_column < 0 { cols as isize + label_column } else { label_column };
                    if !(0..cols as isize).contains(&label) {
                        return Err(Error::param(
                            "label_column",
                            label_column,
                            format!("a column of `{shown}`, which has {cols}: {}..={}", -(cols as isize), cols - 1),
                        ));
                    }
                    let s = (cols, label as usize, line_no);
                    shape = Some(s);
                    s
                }
            };
            if cols != want {
                // No row stored yet: the reference row was skipped as a header.
                let what = if labels.is_empty() { "header row" } else { "first row" };
                return Err(bad(format!(
                    "line {line_no} has {cols} columns, but the {what} (line {first_line}) has {want}"
                )));
            }
            if std::mem::take(&mut first) {
                let numeric = fields.iter().filter(|f| number(f).is_some()).count();
                if 2 * numeric <= cols {
                    log::info!("{shown}: line {line_no} is not numeric; skipped as a header");
                    continue;
                }
            }
            for (c, field) in fields.iter().enumerate() {
                let col = c + 1;
                let value = number(field)
                    .ok_or_else(|| bad(format!("line {line_no}, column {col}: `{}` is not a number", field.trim())))?;
                if !(value as f32).is_finite() {
                    return Err(bad(format!(
                        "line {line_no}, column {col}: `{}` is not a finite (f32) number",
                        field.trim()
                    )));
                }
                if c == label {
                    if value < 0.0 || value.fract() != 0.0 || value > MAX_LABEL as f64 {
                        return Err(bad(format!(
                            "line {line_no}, column {col}: label `{}` is not an integer in 0..={MAX_LABEL}",
                            field.trim()
                        )));
                    }
                    labels.push(value as usize);
                } else {
                    features.push(value as f32);
                }
            }
        }
        let Some((cols, _, _)) = shape else {
            return Err(bad("no data rows (the file is empty)".into()));
        };
        if labels.is_empty() {
            return Err(bad("no data rows (only a header)".into()));
        }
        let classes = labels.iter().max().map_or(0, |&m| m + 1);
        Ok(Dataset { features, dim: cols - 1, labels, classes, path: shown, text_crc32 })
    }

    /// Rescales the features in place (see [`Normalize`]).
    ///
    /// A [`Normalize::Range`] whose bounds are not finite with `min < max` is an
    /// [`Error::Param`] naming `min` or `max`, and leaves the data unchanged.
    pub fn normalize(&mut self, how: Normalize) -> Result<()> {
        match how {
            Normalize::None => {}
            Normalize::MaxAbs => {
                let m = self.features.iter().fold(0f32, |m, v| m.max(v.abs()));
                if m > 0.0 {
                    self.features.iter_mut().for_each(|v| *v /= m);
                }
            }
            Normalize::Range { min, max } => {
                if !min.is_finite() {
                    return Err(Error::param("min", min, "a finite number"));
                }
                if !(max.is_finite() && max > min) {
                    return Err(Error::param("max", max, format!("a finite number > `min` = {min}")));
                }
                let (lo, span) = (min as f64, max as f64 - min as f64);
                self.features.iter_mut().for_each(|v| *v = ((*v as f64 - lo) / span) as f32);
            }
            Normalize::ZScore => {
                let (rows, dim) = (self.rows(), self.dim);
                if rows == 0 {
                    return Ok(());
                }
                let mut mean = vec![0f64; dim];
                for row in self.features.chunks_exact(dim) {
                    mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v as f64);
                }
                mean.iter_mut().for_each(|m| *m /= rows as f64);
                let mut var = vec![0f64; dim];
                for row in self.features.chunks_exact(dim) {
                    for ((s, &m), &v) in var.iter_mut().zip(&mean).zip(row) {
                        *s += (v as f64 - m).powi(2);
                    }
                }
                let std: Vec<f64> = var
                    .iter()
                    .map(|&s| {
                        let sd = (s / rows as f64).sqrt();
                        if sd > 0.0 { sd } else { 1.0 }
                    })
                    .collect();
                for row in self.features.chunks_exact_mut(dim) {
                    for ((v, &m), &sd) in row.iter_mut().zip(&mean).zip(&std) {
                        *v = ((*v as f64 - m) / sd) as f32;
                    }
                }
            }
        }
        Ok(())
    }

    /// Number of rows (samples).
    pub fn rows(&self) -> usize {
        self.labels.len()
    }

    /// One-hot targets, `[rows][classes]`: `on` at each row's label, `off` elsewhere (a row
    /// whose label is not below `classes`, possible only in a hand-built `Dataset`, is all
    /// `off`).
    pub fn one_hot(&self, on: f32, off: f32) -> Vec<f32> {
        let mut out = vec![off; self.rows() * self.classes];
        for (r, &l) in self.labels.iter().enumerate() {
            if l < self.classes {
                out[r * self.classes + l] = on;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::PathBuf;

    fn digits_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/digits.csv.gz")
    }

    /// A file under the temp folder, unique to this process and `name`.
    fn temp(name: &str, bytes: &[u8]) -> PathBuf {
        let path = std::env::temp_dir().join(format!("localprop-data-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn message(e: Error) -> String {
        match e {
            Error::Data { message, .. } => message,
            e => panic!("expected a data error, got {e}"),
        }
    }

    #[test]
    fn loads_the_shipped_digits() {
        let d = Dataset::load_csv(&digits_path(), -1).unwrap();
        assert_eq!((d.rows(), d.dim, d.classes), (1797, 64, 10));
        assert_eq!(d.features.len(), 1797 * 64);
        let mut counts = [0usize; 10];
        d.labels.iter().for_each(|&l| counts[l] += 1);
        assert!(counts.iter().all(|c| (170..=190).contains(c)), "label counts {counts:?}");
        assert!(d.features.iter().all(|&v| (0.0..=16.0).contains(&v) && v.fract() == 0.0));
        assert_eq!(&d.features[..8], &[0.0, 0.0, 5.0, 13.0, 9.0, 1.0, 0.0, 0.0]);
        assert_eq!(&d.labels[..3], &[0, 1, 2]);
        // The label given from the front is the same column.
        assert_eq!(Dataset::load_csv(&digits_path(), 64).unwrap().labels, d.labels);
    }

    #[test]
    fn gzip_and_plain_give_the_same_data() {
        let text = b"1,2,3,0\n4,5,6,2\r\n\n7,8.5,-9,1\n";
        let plain = Dataset::load_csv(&temp("same.csv", text), -1).unwrap();
        // Detected by the magic bytes, not the name.
        let gz = Dataset::load_csv(&temp("same.csv", &gzip(text)), -1).unwrap();
        let gz_named = Dataset::load_csv(&temp("same.csv.gz", &gzip(text)), -1).unwrap();
        assert_eq!(plain.features, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.5, -9.0]);
        assert_eq!(plain.labels, [0, 2, 1]);
        assert_eq!((plain.dim, plain.classes), (3, 3));
        assert_eq!((gz.features, gz.labels), (plain.features.clone(), plain.labels.clone()));
        assert_eq!(gz_named.features, plain.features);
    }

    #[test]
    fn label_column_and_header() {
        let d = Dataset::load_csv(&temp("hdr.csv", b"label, a, b\n1, 0.5, 2\n0, 3, 4\n"), 0).unwrap();
        assert_eq!((d.labels, d.features, d.dim), (vec![1, 0], vec![0.5, 2.0, 3.0, 4.0], 2));
        let d = Dataset::load_csv(&temp("mid.csv", b"1,5,2\n3,0,4\n"), -2).unwrap();
        assert_eq!((d.labels, d.features), (vec![5, 0], vec![1.0, 2.0, 3.0, 4.0]));
        let e = Dataset::load_csv(&temp("lc.csv", b"1,2\n"), 2).unwrap_err();
        assert!(matches!(&e, Error::Param { field, .. } if field == "label_column"), "{e}");
        assert!(Dataset::load_csv(&temp("lc2.csv", b"1,2\n"), -3).is_err());
    }

    #[test]
    fn wrong_column_count_names_the_line_and_counts() {
        let path = temp("cols.csv", b"1,2,3,0\n4,5,6,1\n7,8,1\n");
        let e = Dataset::load_csv(&path, -1).unwrap_err();
        let shown = e.to_string();
        assert!(shown.contains(&path.display().to_string()), "{shown}");
        let m = message(e);
        assert!(m.contains("line 3") && m.contains("3 columns") && m.contains("4"), "{m}");
        let m = message(Dataset::load_csv(&temp("cols2.csv", &gzip(b"1,2,3,0\n\n4,5,6,1,9\n")), -1).unwrap_err());
        assert!(m.contains("line 3") && m.contains("5 columns") && m.contains("line 1"), "{m}");
    }

    #[test]
    fn bad_values_name_line_and_column() {
        let m = message(Dataset::load_csv(&temp("nan.csv", b"1,2,0\n3,x,1\n"), -1).unwrap_err());
        assert!(m.contains("line 2, column 2") && m.contains("`x`"), "{m}");
        let m = message(Dataset::load_csv(&temp("inf.csv", b"1,2,0\n3,4,1\nnan,1,0\n"), -1).unwrap_err());
        assert!(m.contains("line 3, column 1"), "{m}");
        let m = message(Dataset::load_csv(&temp("big.csv", b"1,1e40,0\n"), -1).unwrap_err());
        assert!(m.contains("line 1, column 2"), "{m}");
        for (name, text, col) in [("neg.csv", &b"1,2,-1\n"[..], 3), ("frac.csv", b"1,2,0.5\n", 3)] {
            let m = message(Dataset::load_csv(&temp(name, text), -1).unwrap_err());
            assert!(m.contains(&format!("line 1, column {col}")) && m.contains("label"), "{m}");
        }
        // A mostly numeric first line is data, so its bad field is reported, not skipped.
        let m = message(Dataset::load_csv(&temp("first.csv", b"1,?,3,0\n1,2,3,0\n"), -1).unwrap_err());
        assert!(m.contains("line 1, column 2"), "{m}");
        assert!(Dataset::load_csv(&temp("empty.csv", b"\n\n"), -1).is_err());
        assert!(Dataset::load_csv(&temp("onlyhdr.csv", b"a,b\n"), -1).is_err());
        assert!(matches!(Dataset::load_csv(Path::new("/nonexistent/x.csv"), -1), Err(Error::Io { .. })));
    }

    #[test]
    fn normalization_values() {
        let base = Dataset {
            features: vec![0.0, -2.0, 4.0, 2.0, 8.0, 6.0],
            dim: 2,
            labels: vec![0, 1, 1],
            classes: 2,
            path: "mem".into(),
            text_crc32: 0,
        };
        let mut d = base.clone();
        d.normalize(Normalize::None).unwrap();
        assert_eq!(d.features, base.features);
        d.normalize(Normalize::MaxAbs).unwrap();
        assert_eq!(d.features, [0.0, -0.25, 0.5, 0.25, 1.0, 0.75]);
        let mut d = base.clone();
        d.normalize(Normalize::Range { min: -2.0, max: 8.0 }).unwrap();
        assert_eq!(d.features, [0.2, 0.0, 0.6, 0.4, 1.0, 0.8]);
        let mut d = base.clone();
        d.normalize(Normalize::ZScore).unwrap();
        // Column 0: 0, 4, 8 (mean 4, std sqrt(32/3)); column 1: -2, 2, 6 (mean 2, same std).
        let s = (32.0f64 / 3.0).sqrt();
        for (got, want) in d.features.iter().zip([-4.0, -4.0, 0.0, 0.0, 4.0, 4.0]) {
            assert!((*got as f64 - want / s).abs() < 1e-6, "{:?}", d.features);
        }
        let mut c = Dataset { features: vec![3.0, 1.0, 3.0, 2.0], ..base.clone() };
        c.labels.truncate(2);
        c.normalize(Normalize::ZScore).unwrap();
        assert_eq!(c.features, [0.0, -1.0, 0.0, 1.0]); // constant column: std taken as 1
        let mut z = Dataset { features: vec![0.0; 6], ..base.clone() };
        z.normalize(Normalize::MaxAbs).unwrap();
        assert_eq!(z.features, [0.0; 6]);
        let mut d = base.clone();
        assert!(d.normalize(Normalize::Range { min: 1.0, max: 1.0 }).is_err());
        assert!(d.normalize(Normalize::Range { min: f32::NAN, max: 1.0 }).is_err());
        assert_eq!(d.features, base.features);
        let mut digits = Dataset::load_csv(&digits_path(), -1).unwrap();
        digits.normalize(Normalize::MaxAbs).unwrap();
        assert!(digits.features.iter().all(|v| (0.0..=1.0).contains(v)));
        assert!(digits.features.contains(&1.0) && digits.features.contains(&0.0625)); // 16 -> 1, 1 -> 1/16
    }

    #[test]
    fn one_hot_targets() {
        let d = Dataset {
            features: vec![0.0; 3],
            dim: 1,
            labels: vec![2, 0, 1],
            classes: 3,
            path: "mem".into(),
            text_crc32: 0,
        };
        assert_eq!(d.one_hot(0.8, -0.8), [-0.8, -0.8, 0.8, 0.8, -0.8, -0.8, -0.8, 0.8, -0.8]);
    }
}

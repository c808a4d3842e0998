//! Summarizes interleaved rounds: per workload and metric, the median and
//! range of each server, the ratio of the medians, and the target it is
//! held to.

use std::collections::BTreeMap;

use crate::fmt_num;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

struct Target {
    workload: String,
    metric: String,
    at_most: bool,
    ratio: f64,
}

fn parse_target(t: &str) -> Result<Target, String> {
    let parts: Vec<&str> = t.split_whitespace().collect();
    let [workload, metric, op, ratio] = parts[..] else {
        return Err(format!("target {t:?} is not \"WORKLOAD METRIC <=|>= RATIO\""));
    };
    let at_most = match op {
        "<=" => true,
        ">=" => false,
        _ => return Err(format!("target {t:?}: operator must be <= or >=")),
    };
    Ok(Target {
        workload: workload.into(),
        metric: metric.into(),
        at_most,
        ratio: ratio.parse().map_err(|_| format!("target {t:?}: bad ratio"))?,
    })
}

/// Renders the results file (`server round workload metric value` lines)
/// as a Markdown table comparing servers `a` and `b`.
pub fn render(text: &str, a: &str, b: &str, targets: &[String]) -> Result<String, String> {
    let targets: Vec<Target> = targets.iter().map(|t| parse_target(t)).collect::<Result<_, _>>()?;
    // (workload, metric) in order of first appearance, values per server.
    let mut order: Vec<(String, String)> = Vec::new();
    let mut values: BTreeMap<(String, String, String), Vec<f64>> = BTreeMap::new();
    let mut rounds: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        let [server, round, workload, metric, value] = f[..] else {
            return Err(format!("malformed line {line:?}"));
        };
        let v: f64 = value.parse().map_err(|_| format!("bad value in {line:?}"))?;
        let key = (workload.to_string(), metric.to_string());
        if !order.contains(&key) {
            order.push(key);
        }
        rounds.entry(server.to_string()).or_default().insert(round.to_string());
        values
            .entry((workload.into(), metric.into(), server.into()))
            .or_default()
            .push(v);
    }
    let cell = |w: &str, m: &str, s: &str| -> (Option<f64>, String) {
        match values.get(&(w.to_string(), m.to_string(), s.to_string())) {
            Some(v) if !v.is_empty() => {
                let mut v = v.clone();
                let med = median(&mut v);
                let (lo, hi) = (v[0], v[v.len() - 1]);
                (
                    Some(med),
                    format!("{} ({}..{})", fmt_num(med), fmt_num(lo), fmt_num(hi)),
                )
            }
            _ => (None, "—".into()),
        }
    };
    let mut out = String::new();
    let n = |s: &str| rounds.get(s).map_or(0, |r| r.len());
    out.push_str(&format!(
        "| workload | metric | {a} median (min..max), n={} | {b} median (min..max), n={} | {a}/{b} | target | met |\n",
        n(a),
        n(b)
    ));
    out.push_str("|---|---|---:|---:|---:|---|---|\n");
    for (w, m) in &order {
        let (ma, ca) = cell(w, m, a);
        let (mb, cb) = cell(w, m, b);
        let ratio = match (ma, mb) {
            (Some(x), Some(y)) if y != 0.0 => Some(x / y),
            _ => None,
        };
        let target = targets.iter().find(|t| &t.workload == w && &t.metric == m);
        let (tcell, met) = match target {
            Some(t) => {
                let op = if t.at_most { "≤" } else { "≥" };
                let met = match (t.at_most, ratio) {
                    (true, Some(r)) => {
                        if r <= t.ratio {
                            "yes"
                        } else {
                            "**no**"
                        }
                    }
                    (false, Some(r)) => {
                        if r >= t.ratio {
                            "yes"
                        } else {
                            "**no**"
                        }
                    }
                    (_, None) => "?",
                };
                (format!("{op} {}", t.ratio), met)
            }
            None => (String::new(), ""),
        };
        let rcell = ratio.map_or("—".to_string(), |r| format!("{r:.2}"));
        out.push_str(&format!("| {w} | {m} | {ca} | {cb} | {rcell} | {tcell} | {met} |\n"));
    }
    Ok(out)
}

/// Parsed results: (workload, metric) in order of first appearance, the
/// values per (workload, metric, server), and the rounds per server.
struct Results {
    order: Vec<(String, String)>,
    values: BTreeMap<(String, String, String), Vec<f64>>,
    rounds: BTreeMap<String, std::collections::BTreeSet<String>>,
}

fn parse_results(text: &str) -> Result<Results, String> {
    let mut r = Results {
        order: Vec::new(),
        values: BTreeMap::new(),
        rounds: BTreeMap::new(),
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        let [server, round, workload, metric, value] = f[..] else {
            return Err(format!("malformed line {line:?}"));
        };
        let v: f64 = value.parse().map_err(|_| format!("bad value in {line:?}"))?;
        let key = (workload.to_string(), metric.to_string());
        if !r.order.contains(&key) {
            r.order.push(key);
        }
        r.rounds
            .entry(server.to_string())
            .or_default()
            .insert(round.to_string());
        r.values
            .entry((workload.into(), metric.into(), server.into()))
            .or_default()
            .push(v);
    }
    Ok(r)
}

impl Results {
    /// Median, min and max of one server's values.
    fn stats(&self, w: &str, m: &str, s: &str) -> Option<(f64, f64, f64)> {
        let mut v = self.values.get(&(w.to_string(), m.to_string(), s.to_string()))?.clone();
        if v.is_empty() {
            return None;
        }
        let med = median(&mut v);
        Some((med, v[0], v[v.len() - 1]))
    }
}

/// Renders the results file as one table with a column per server (each
/// cell: the median, and the largest distance of min or max from it in %),
/// then a table of ratios between servers, each `"WORKLOAD METRIC A / B
/// <=|>= R"` (the ratio of the medians; with a bound, whether it is met).
pub fn render_matrix(text: &str, servers: &[String], ratios: &[String]) -> Result<String, String> {
    let r = parse_results(text)?;
    let mut out = String::from("| workload | metric |");
    for s in servers {
        out.push_str(&format!(" {s} (n={}) |", r.rounds.get(s).map_or(0, |x| x.len())));
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---:|".repeat(servers.len()));
    out.push('\n');
    for (w, m) in &r.order {
        out.push_str(&format!("| {w} | {m} |"));
        for s in servers {
            let cell = match r.stats(w, m, s) {
                Some((med, lo, hi)) => {
                    let spread = if med != 0.0 {
                        ((med - lo).max(hi - med) / med.abs() * 100.0).round()
                    } else {
                        0.0
                    };
                    if spread >= 1.0 {
                        format!("{} ±{spread}%", fmt_num(med))
                    } else {
                        fmt_num(med)
                    }
                }
                None => "—".into(),
            };
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    if ratios.is_empty() {
        return Ok(out);
    }
    out.push_str("\n| workload | metric | ratio | value | target | met |\n|---|---|---|---:|---|---|\n");
    for spec in ratios {
        let t: Vec<&str> = spec.split_whitespace().collect();
        let (w, m, a, b, bound) = match t[..] {
            [w, m, a, "/", b] => (w, m, a, b, None),
            [w, m, a, "/", b, op, v] if op == "<=" || op == ">=" => {
                let v: f64 = v.parse().map_err(|_| format!("ratio {spec:?}: bad bound"))?;
                (w, m, a, b, Some((op == "<=", v)))
            }
            _ => return Err(format!("ratio {spec:?} is not \"WORKLOAD METRIC A / B [<=|>= R]\"")),
        };
        let value = match (r.stats(w, m, a), r.stats(w, m, b)) {
            (Some((x, ..)), Some((y, ..))) if y != 0.0 => Some(x / y),
            _ => None,
        };
        let vcell = value.map_or("—".to_string(), fmt_num);
        let (tcell, met) = match (bound, value) {
            (Some((at_most, lim)), Some(v)) => {
                let ok = if at_most { v <= lim } else { v >= lim };
                (
                    format!("{} {lim}", if at_most { "≤" } else { "≥" }),
                    if ok { "yes" } else { "**no**" },
                )
            }
            (Some((at_most, lim)), None) => (format!("{} {lim}", if at_most { "≤" } else { "≥" }), "?"),
            (None, _) => (String::new(), ""),
        };
        out.push_str(&format!("| {w} | {m} | {a} / {b} | {vcell} | {tcell} | {met} |\n"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_ranges_ratios_targets() {
        let text = "a\t1\techo\tcpu\t10\nb\t1\techo\tcpu\t20\na\t2\techo\tcpu\t12\nb\t2\techo\tcpu\t22\n\
                    a\t3\techo\tcpu\t8\nb\t3\techo\tcpu\t18\n";
        let t = render(text, "a", "b", &["echo cpu <= 0.65".into()]).unwrap();
        let row = t.lines().nth(2).unwrap();
        assert_eq!(
            row,
            "| echo | cpu | 10.0 (8.00..12.0) | 20.0 (18.0..22.0) | 0.50 | ≤ 0.65 | yes |"
        );
        assert!(t.contains("n=3"));
    }

    #[test]
    fn a_column_per_server_and_ratios() {
        let text = "a\t1\tbc\tcpu\t10\nb\t1\tbc\tcpu\t20\na\t2\tbc\tcpu\t12\nb\t2\tbc\tcpu\t20\nc\t1\tbc\tcpu\t5\n";
        let t = render_matrix(
            text,
            &["a".into(), "b".into(), "c".into()],
            &["bc cpu a / b <= 0.5".into(), "bc cpu c / a".into()],
        )
        .unwrap();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "| workload | metric | a (n=2) | b (n=2) | c (n=1) |");
        assert_eq!(lines[2], "| bc | cpu | 11.0 ±9% | 20.0 | 5.00 |");
        assert_eq!(lines[6], "| bc | cpu | a / b | 0.550 | ≤ 0.5 | **no** |");
        assert_eq!(lines[7], "| bc | cpu | c / a | 0.455 |  |  |");
    }

    #[test]
    fn any_two_of_several_servers() {
        // Three servers in one file (as compare.sh writes with BASELINE);
        // the table compares the two named ones and ignores the third.
        let text = "hvws\t1\techo\tcpu\t10\ntokio-tungstenite\t1\techo\tcpu\t30\nhvws-base\t1\techo\tcpu\t20\n\
                    hvws-base\t2\techo\tcpu\t22\nhvws\t2\techo\tcpu\t12\ntokio-tungstenite\t2\techo\tcpu\t31\n";
        let t = render(text, "hvws", "hvws-base", &[]).unwrap();
        let mut lines = t.lines();
        assert_eq!(
            lines.next().unwrap(),
            "| workload | metric | hvws median (min..max), n=2 | hvws-base median (min..max), n=2 | hvws/hvws-base | target | met |"
        );
        assert_eq!(
            lines.nth(1).unwrap(),
            "| echo | cpu | 11.0 (10.0..12.0) | 21.0 (20.0..22.0) | 0.52 |  |  |"
        );
        assert_eq!(lines.next(), None);
    }
}

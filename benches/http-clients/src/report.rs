//! `http-clients report FILE`: the Markdown tables of benches/http-clients.sh
//! from its results file; `http-clients callgrind SHORT LONG N1 N2`: user-space
//! instructions and allocations per request from two callgrind runs of one
//! client that differ only in the number of requests.

use std::collections::{BTreeMap, HashMap};
use std::error::Error;

type Res<T> = Result<T, Box<dyn Error>>;

/// One result line (`round=R result client=C key=value ...`) as numbers.
#[derive(Debug)]
struct Row {
    round: u32,
    client: String,
    values: HashMap<String, f64>,
}

fn parse(file: &str) -> Res<Vec<Row>> {
    let text = std::fs::read_to_string(file)?;
    let mut rows = Vec::new();
    for line in text.lines().filter(|l| l.contains(" result ")) {
        let (mut round, mut client, mut values) = (None, None, HashMap::new());
        for (key, value) in line.split(' ').filter_map(|kv| kv.split_once('=')) {
            match key {
                "round" => round = Some(value.parse()?),
                "client" => client = Some(value.to_string()),
                _ => {
                    values.insert(key.to_string(), value.parse()?);
                }
            }
        }
        rows.push(Row {
            round: round.ok_or_else(|| format!("no round in {line:?}"))?,
            client: client.ok_or_else(|| format!("no client in {line:?}"))?,
            values,
        });
    }
    Ok(rows)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// "median (min..max)" of `metric` over `client`'s rounds.
fn cell(rows: &[Row], client: &str, metric: &str) -> (f64, String) {
    let mut v: Vec<f64> = rows
        .iter()
        .filter(|r| r.client == client)
        .filter_map(|r| r.values.get(metric).copied())
        .collect();
    let m = median(&mut v);
    let (lo, hi) = (
        v.first().copied().unwrap_or(f64::NAN),
        v.last().copied().unwrap_or(f64::NAN),
    );
    (m, format!("{m:.0} ({lo:.0}..{hi:.0})"))
}

/// The tables: each client's medians, then hvws against each other client.
pub fn report(file: &str) -> Res<()> {
    let rows = parse(file)?;
    let mut clients: Vec<&str> = Vec::new();
    for r in &rows {
        if !clients.contains(&r.client.as_str()) {
            clients.push(&r.client);
        }
    }
    // hvws first, then the others in the order met.
    clients.sort_by_key(|c| *c != "hvws");
    let n = |c: &str| rows.iter().filter(|r| r.client == c).count();
    println!("| client | CPU ns per request (utime+stime) | of which user | of which sys | CPU ns per request (schedstat) | req/s | runs |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut medians = BTreeMap::new();
    for &c in &clients {
        let (cpu, cpu_cell) = cell(&rows, c, "cpu_ns_per_req");
        let (_, user) = cell(&rows, c, "user_ns_per_req");
        let (_, sys) = cell(&rows, c, "sys_ns_per_req");
        let (sched, sched_cell) = cell(&rows, c, "sched_ns_per_req");
        let (rps, rps_cell) = cell(&rows, c, "req_per_s");
        medians.insert(c, (cpu, sched, rps));
        println!(
            "| {c} | {cpu_cell} | {user} | {sys} | {sched_cell} | {rps_cell} | {} |",
            n(c)
        );
    }
    let Some(&(a_cpu, a_sched, a_rps)) = medians.get("hvws") else {
        return Ok(());
    };
    println!();
    println!("| ratio | CPU per request, of the medians | per round: min, median, max | schedstat CPU, of the medians | req/s, of the medians |");
    println!("|---|---:|---|---:|---:|");
    for &c in clients.iter().filter(|c| **c != "hvws") {
        let (cpu, sched, rps) = medians[c];
        // The same round's runs, paired.
        let cpu_of = |client: &str, round: u32| {
            rows.iter()
                .find(|r| r.client == client && r.round == round)
                .and_then(|r| r.values.get("cpu_ns_per_req").copied())
        };
        let mut per_round: Vec<f64> = rows
            .iter()
            .filter(|r| r.client == "hvws")
            .filter_map(|r| Some(cpu_of("hvws", r.round)? / cpu_of(c, r.round)?))
            .collect();
        let m = median(&mut per_round);
        let (lo, hi) = (
            per_round.first().copied().unwrap_or(f64::NAN),
            per_round.last().copied().unwrap_or(f64::NAN),
        );
        println!(
            "| hvws / {c} | **{:.2}** | {lo:.2}, {m:.2}, {hi:.2} | {:.2} | {:.2} |",
            a_cpu / cpu,
            a_sched / sched,
            a_rps / rps
        );
    }
    Ok(())
}

/// libc's allocation entry points (glibc names them in several ways).
const ALLOCS: &[&str] = &[
    "malloc",
    "__libc_malloc",
    "__GI___libc_malloc",
    "calloc",
    "__libc_calloc",
    "posix_memalign",
    "aligned_alloc",
    "memalign",
    "__libc_memalign",
];
const REALLOCS: &[&str] = &["realloc", "__libc_realloc", "__GI___libc_realloc"];

/// Total instructions, allocations and reallocations in a callgrind file.
/// Calls from one allocator function into another are not counted twice.
fn callgrind_totals(file: &str) -> Res<(u64, u64, u64)> {
    let text = std::fs::read_to_string(file)?;
    let mut names: HashMap<String, String> = HashMap::new();
    // `fn=(7) name` the first time, `fn=(7)` after that.
    let mut resolve = |spec: &str| -> String {
        let spec = spec.trim();
        if let Some(rest) = spec.strip_prefix('(') {
            if let Some((id, name)) = rest.split_once(')') {
                let name = name.trim();
                if name.is_empty() {
                    return names.get(id).cloned().unwrap_or_default();
                }
                names.insert(id.to_string(), name.to_string());
                return name.to_string();
            }
        }
        spec.to_string()
    };
    let (mut total, mut allocs, mut reallocs) = (None, 0u64, 0u64);
    let (mut current, mut callee) = (String::new(), String::new());
    let is_alloc = |n: &str| ALLOCS.contains(&n) || REALLOCS.contains(&n);
    for line in text.lines() {
        if let Some(spec) = line.strip_prefix("fn=") {
            current = resolve(spec);
        } else if let Some(spec) = line.strip_prefix("cfn=") {
            callee = resolve(spec);
        } else if let Some(rest) = line.strip_prefix("calls=") {
            let count: u64 = rest.split(' ').next().unwrap_or("0").parse()?;
            if !is_alloc(&current) {
                if ALLOCS.contains(&callee.as_str()) {
                    allocs += count;
                } else if REALLOCS.contains(&callee.as_str()) {
                    reallocs += count;
                }
            }
        } else if let Some(rest) = line.strip_prefix("summary:").or_else(|| line.strip_prefix("totals:")) {
            total = Some(rest.trim().split(' ').next().unwrap_or("0").parse()?);
        }
    }
    Ok((total.ok_or_else(|| format!("no totals in {file}"))?, allocs, reallocs))
}

/// Per request: the difference between a long and a short run of the same
/// client, divided by the difference in requests, so start-up, connecting
/// and warm-up cancel out.
pub fn callgrind(short: &str, long: &str, n_short: u64, n_long: u64) -> Res<()> {
    let (i1, a1, r1) = callgrind_totals(short)?;
    let (i2, a2, r2) = callgrind_totals(long)?;
    let n = n_long
        .checked_sub(n_short)
        .filter(|&n| n > 0)
        .ok_or("the long run must have more requests")? as f64;
    let per = |a: u64, b: u64| (b as f64 - a as f64) / n;
    println!(
        "instr_per_req={:.0} allocs_per_req={:.2} reallocs_per_req={:.2}",
        per(i1, i2),
        per(a1, a2),
        per(r1, r2)
    );
    Ok(())
}

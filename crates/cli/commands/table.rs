//! `verdict history`, `doctor`, `vacuum`, `restore` and `migrate`: keeping the warehouse's
//! tables.

use std::io::Write;

use anyhow::{anyhow, Context, Result};
use verdict_table::{Table, Warehouse};

use crate::args::{
    Cli, DoctorArgs, HistoryArgs, KeygenArgs, MigrateArgs, RestoreArgs, VacuumArgs, VerifyArgs,
};
use crate::output;
use crate::settings::{self, Env};

fn open(cli: &Cli, env: &Env) -> Result<Warehouse> {
    Ok(Warehouse::new(settings::warehouse(cli, env)?)?)
}

/// Runs `verdict verify`: the report, then exit 2 when anything does not match.
pub async fn verify(cli: &Cli, a: &VerifyArgs, env: &Env, out: &mut dyn Write) -> Result<()> {
    let wh = open(cli, env)?;
    let opts = settings::verify(a, env)?;
    let snap = wh
        .snapshot(settings::as_of(a.as_of.as_deref())?.as_ref())
        .await?;
    let report = wh.verify(&snap, &opts).await?;
    output::verify(out, &report, a.format)?;
    if let Some(first) = report.problems.first() {
        return Err(anyhow!(
            "verify {}: {} problem(s); the first: {}: {}",
            wh.location(),
            report.problems.len(),
            first.kind.label(),
            first.message
        ));
    }
    Ok(())
}

/// Runs `verdict keygen`: the private key file (0600, never overwritten) and its `.pub`.
pub fn keygen(a: &KeygenArgs, out: &mut dyn Write) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let key = verdict_table::SigningKey::generate()?;
    let public = key.public_key().to_pem();
    let mut pub_path = a.out.clone().into_os_string();
    pub_path.push(".pub");
    let pub_path = std::path::PathBuf::from(pub_path);
    let create = |path: &std::path::Path, mode: u32, text: &str| -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .with_context(|| format!("writing {}", path.display()))
    };
    if pub_path.exists() {
        return Err(anyhow!("{} exists: not overwriting it", pub_path.display()));
    }
    create(&a.out, 0o600, &key.to_pem())?;
    create(&pub_path, 0o644, &public)?;
    // Public: readable by all whatever the process umask.
    std::fs::set_permissions(
        &pub_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .with_context(|| format!("setting the mode of {}", pub_path.display()))?;
    writeln!(
        out,
        "private key: {} (keep it secret; pass it as --signing-key or VERDICT_SIGNING_KEY)",
        a.out.display()
    )?;
    writeln!(
        out,
        "public key: {} (give it to auditors: verdict verify --public-key)",
        pub_path.display()
    )?;
    write!(out, "{public}")?;
    Ok(())
}

/// Runs `verdict history`.
pub async fn history(cli: &Cli, a: &HistoryArgs, env: &Env, out: &mut dyn Write) -> Result<()> {
    let wh = open(cli, env)?;
    let h = wh.history(Table::Decisions, a.limit).await?;
    output::history(out, &h, a.format)
}

/// Runs `verdict doctor`: exit 0 when every file reads, else an error after the report.
pub async fn doctor(cli: &Cli, a: &DoctorArgs, env: &Env, out: &mut dyn Write) -> Result<()> {
    let wh = settings::writable_warehouse(cli, env)?;
    let report = wh.doctor().await?;
    let mut removed = None;
    if a.remove_damaged && !report.problems.is_empty() {
        for t in Table::ALL {
            let paths: Vec<String> = report
                .problems
                .iter()
                .filter(|p| p.table == t.name())
                .map(|p| p.path.clone())
                .collect();
            if paths.is_empty() {
                continue;
            }
            let v = wh.remove_files(t, &paths).await?;
            if t == Table::Decisions {
                removed = v;
            }
        }
    }
    output::doctor(out, &report, removed, a.format)?;
    if !report.problems.is_empty() && !a.remove_damaged {
        return Err(anyhow!(
            "{} damaged file(s) in {}",
            report.problems.len(),
            wh.location()
        ));
    }
    Ok(())
}

/// Runs `verdict vacuum`.
pub async fn vacuum(cli: &Cli, a: &VacuumArgs, env: &Env, out: &mut dyn Write) -> Result<()> {
    let wh = open(cli, env)?;
    let micros = settings::parse_duration(&a.retention).context("--retention")?;
    let retention = std::time::Duration::from_micros(u64::try_from(micros).unwrap_or(0));
    let deleted = wh.vacuum(retention).await?;
    if a.format == crate::args::SummaryFormat::Json {
        let m: serde_json::Map<String, serde_json::Value> = deleted
            .iter()
            .map(|(t, n)| (t.to_string(), serde_json::Value::from(*n)))
            .collect();
        serde_json::to_writer_pretty(&mut *out, &m)?;
        writeln!(out)?;
        return Ok(());
    }
    for (t, n) in deleted {
        writeln!(out, "{t}: {n} file(s) deleted")?;
    }
    Ok(())
}

/// Runs `verdict restore --to VERSION`.
pub async fn restore(cli: &Cli, a: &RestoreArgs, env: &Env, out: &mut dyn Write) -> Result<()> {
    let wh = settings::writable_warehouse(cli, env)?;
    let v = wh
        .restore(a.to)
        .await
        .with_context(|| format!("restore {} to version {}", wh.location(), a.to))?;
    writeln!(out, "restored decisions to version {} as version {v}", a.to)?;
    Ok(())
}

/// Runs `verdict migrate`.
pub async fn migrate(cli: &Cli, _a: &MigrateArgs, env: &Env, out: &mut dyn Write) -> Result<()> {
    let loc = settings::warehouse(cli, env)?;
    let summary = tokio::task::spawn_blocking(move || verdict_ingest::migrate(&loc))
        .await
        .context("the migration task stopped")??;
    writeln!(out, "{summary}")?;
    Ok(())
}

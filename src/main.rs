//! The `guildhall` command line.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use guildhall::config::{redact_url, Config};
use guildhall::{app, db, demo, jobs};
use std::path::PathBuf;

/// Guildhall: a marketplace and reputation engine for the open-source helper
/// economy. Configuration comes from GUILDHALL_* environment variables and an
/// optional TOML file (see README.md for every setting and its default).
#[derive(Parser)]
#[command(name = "guildhall", version, about, long_about = None)]
struct Cli {
    /// TOML configuration file (also GUILDHALL_CONFIG). Environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API (default 127.0.0.1:8080) with background workers in-process.
    /// On first start creates the data directory and the SQLite database and migrates it.
    Serve {
        /// Seed demo projects, users and approved helpers, and print their credentials.
        #[arg(long)]
        demo: bool,
        /// Do not run background jobs in this process (run `guildhall worker` instead).
        #[arg(long)]
        no_workers: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Run background job workers only (no HTTP); several may share a PostgreSQL database.
    /// Search-index jobs run in `serve`, the process that owns the index.
    Worker,
    /// Rebuild the search index from the database (stop `serve` first: one writer).
    Reindex,
    /// Ledger operations.
    Ledger {
        #[command(subcommand)]
        action: LedgerAction,
    },
    /// Platform administration.
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Import history from another Q&A system.
    Import {
        #[command(subcommand)]
        source: ImportSource,
    },
    /// Read one mail on stdin and hand it to the server's reply-by-email endpoint
    /// (POST /api/v1/inbound/email with GUILDHALL_INBOUND_EMAIL_SECRET); for a mail
    /// server's pipe transport. Exits 0 when handed over, 75 to retry later, 65 if refused.
    MailReceive {
        /// The server's base URL (default: GUILDHALL_PUBLIC_URL).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// The SMTP envelope recipient (Postfix: `${recipient}`).
        #[arg(long, value_name = "ADDRESS")]
        recipient: Option<String>,
    },
    /// Evaluate matching or routing offline on Stack Exchange dumps (a temporary
    /// database; each site's first 70% of questions is history, the last 30% the test).
    Eval {
        #[command(subcommand)]
        what: EvalWhat,
    },
}

#[derive(Subcommand)]
enum EvalWhat {
    /// P@1, MRR, NDCG@3 and Recall@10 of the matcher and two baselines (activity,
    /// BM25-profile) for held-out questions with an accepted answer by someone else.
    Matching {
        /// Site dump directories (each with Posts.xml).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Top-1 and top-3 accuracy of POST /route's project ranking for held-out questions.
    Routing {
        /// Site dump directories (each with Posts.xml).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum LedgerAction {
    /// Verify every ledger invariant (balanced transfers, account sums equal their
    /// transfers, nothing below zero, holds resolved at most once); exits 1 on a violation.
    Check,
}

#[derive(Subcommand)]
enum AdminAction {
    /// Make the account with this email a platform admin (admins may verify projects
    /// through POST /api/v1/projects/{slug}/verification).
    Grant {
        /// The account's email.
        email: String,
    },
}

#[derive(Subcommand)]
enum ImportSource {
    /// Load a Stack Exchange dump directory (Posts.xml, and Users.xml when present) as
    /// closed tickets of a project: questions become tickets, answers messages, the
    /// accepted answer's author the resolving helper. Idempotent; safe while `serve` runs.
    Stackexchange {
        /// The site's dump directory, named after the site (e.g. ai.stackexchange.com).
        dir: PathBuf,
        /// Project slug to import into (created if missing).
        #[arg(long)]
        project: String,
    },
}

/// The exit status a mail server's pipe reads as "try again later"
/// (sysexits EX_TEMPFAIL): every failure of `mail-receive` that is not the
/// message's fault, so a configuration mistake delays mail instead of
/// bouncing it.
const EX_TEMPFAIL: i32 = 75;

fn main() {
    let receiving = std::env::args().any(|a| a == "mail-receive");
    if receiving {
        // Whatever goes wrong, the mail server keeps the message and retries.
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default(info);
            std::process::exit(EX_TEMPFAIL);
        }));
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if receiving && e.use_stderr() => {
            eprintln!("{e}");
            std::process::exit(EX_TEMPFAIL);
        }
        Err(e) => e.exit(),
    };
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("guildhall: configuration error: {e:#}");
            std::process::exit(if receiving { EX_TEMPFAIL } else { 2 });
        }
    };
    init_tracing(&config.log);
    if let Err(e) = run(cli.command, config) {
        eprintln!("guildhall: {e:#}");
        std::process::exit(if receiving { EX_TEMPFAIL } else { 1 });
    }
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

fn open(config: &Config) -> anyhow::Result<db::DbPool> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let pool = db::connect(
        &config.database_url,
        config.db_pool_size,
        config.db_pool_timeout,
    )?;
    let mut conn = pool
        .get()
        .with_context(|| format!("cannot connect to {}", redact_url(&config.database_url)))?;
    let applied = db::migrate(&mut conn)?;
    for name in &applied {
        tracing::info!(migration = %name, "applied migration");
    }
    Ok(pool)
}

fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::MailReceive { url, recipient } => {
            use guildhall::mail::pipe;
            let Some(secret) = &config.inbound_email_secret else {
                eprintln!("guildhall mail-receive: GUILDHALL_INBOUND_EMAIL_SECRET is not set");
                std::process::exit(EX_TEMPFAIL);
            };
            let base = url.unwrap_or_else(|| config.public_url.clone());
            let endpoint = format!("{}/api/v1/inbound/email", base.trim_end_matches('/'));
            let raw = pipe::read_message(std::io::stdin().lock()).context("reading stdin")?;
            let delivery = pipe::post(&endpoint, &secret.0, recipient.as_deref(), &raw);
            match &delivery {
                pipe::Delivery::Delivered(body) => println!("{body}"),
                pipe::Delivery::Defer(why) | pipe::Delivery::Refused(why) => {
                    eprintln!("guildhall mail-receive: {why}")
                }
            }
            std::process::exit(delivery.exit_code());
        }
        Command::Migrate => {
            let pool = open(&config)?;
            drop(pool);
            println!(
                "database at {} is up to date",
                redact_url(&config.database_url)
            );
            Ok(())
        }
        Command::Worker => {
            let pool = open(&config)?;
            let handle = jobs::runner(pool, &config)?.start();
            tracing::info!(
                workers = config.job_workers.max(1),
                "job workers running; Ctrl-C to stop"
            );
            actix_web::rt::System::new().block_on(async {
                let _ = actix_web::rt::signal::ctrl_c().await;
            });
            handle.shutdown();
            Ok(())
        }
        Command::Admin {
            action: AdminAction::Grant { email },
        } => {
            let pool = open(&config)?;
            if guildhall::domain::users::grant_admin(&mut *pool.get()?, &email)? {
                println!("{email} is a platform admin");
                Ok(())
            } else {
                anyhow::bail!("no account has the email {email}")
            }
        }
        Command::Ledger {
            action: LedgerAction::Check,
        } => {
            let pool = open(&config)?;
            let violations = guildhall::ledger::check(&mut *pool.get()?)?;
            if violations.is_empty() {
                println!("ledger check: no violations");
                Ok(())
            } else {
                for v in &violations {
                    println!("violation: {v}");
                }
                anyhow::bail!("ledger check found {} violation(s)", violations.len())
            }
        }
        Command::Reindex => {
            let pool = open(&config)?;
            let index =
                guildhall_index::TicketIndex::open_or_create(&config.index_dir()).map_err(|e| {
                    anyhow::anyhow!(
                        "cannot open the index in {} (is `serve` running?): {e}",
                        config.index_dir().display()
                    )
                })?;
            let mut conn = pool.get()?;
            let total = jobs::sync_index::mark_all_dirty(&mut conn)? as u64;
            index
                .clear()
                .map_err(|e| anyhow::anyhow!("cannot clear the index: {e}"))?;
            let bar = progress_bar(total, "indexing tickets");
            let n = jobs::sync_index::sync(&mut conn, &index, |done| bar.set_position(done))?;
            bar.finish_and_clear();
            println!(
                "reindexed {n} tickets; the index holds {} documents",
                index.num_docs()
            );
            Ok(())
        }
        Command::Import {
            source: ImportSource::Stackexchange { dir, project },
        } => {
            let pool = open(&config)?;
            let bar = progress_bar(0, "importing");
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:40}] {bytes}/{total_bytes} ({eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let report =
                guildhall::import::import_stackexchange(&pool, &dir, &project, |done, total| {
                    bar.set_length(total);
                    bar.set_position(done);
                })?;
            bar.finish_and_clear();
            println!(
                "imported {}: {} questions, {} answers read; {} tickets, {} messages, {} users created; {} rows skipped",
                dir.display(),
                report.questions,
                report.answers,
                report.tickets_created,
                report.messages_created,
                report.users_created,
                report.skipped
            );
            println!("the search index is updated by the index job of `guildhall serve` (or run `guildhall reindex`)");
            Ok(())
        }
        Command::Eval { what } => {
            let (dirs, json) = match &what {
                EvalWhat::Matching { dirs, json } | EvalWhat::Routing { dirs, json } => {
                    (dirs, *json)
                }
            };
            let world = guildhall::eval::prepare(dirs, |m| eprintln!("{m}"))?;
            match what {
                EvalWhat::Matching { .. } => {
                    let rows = guildhall::eval::matching(&world, |m| eprintln!("{m}"))?;
                    if json {
                        println!("{}", serde_json::to_string_pretty(&rows)?);
                    } else {
                        print!("{}", guildhall::eval::matching_table(&rows));
                    }
                }
                EvalWhat::Routing { .. } => {
                    let rows = guildhall::eval::routing(&world, |m| eprintln!("{m}"))?;
                    if json {
                        println!("{}", serde_json::to_string_pretty(&rows)?);
                    } else {
                        print!("{}", guildhall::eval::routing_table(&rows));
                    }
                }
            }
            Ok(())
        }
        Command::Serve {
            demo: with_demo,
            no_workers,
        } => {
            let pool = open(&config)?;
            if with_demo {
                let created = demo::seed(&pool).context("seeding demo data failed")?;
                print_demo(created, config.bind);
            }
            let runner = if no_workers || config.job_workers == 0 {
                None
            } else {
                Some(jobs::runner(pool.clone(), &config)?.start())
            };
            let state = app::state(config.clone(), pool.clone())?;
            // The index has one writer: its jobs always run here, in the process that owns it.
            let index_runner = jobs::index_runner(pool.clone(), state.index.clone(), &config)?;
            guildhall_jobs::BackgroundJob::enqueue(&jobs::SyncIndex, &mut *pool.get()?)?;
            let index_runner = index_runner.start();
            let bind = config.bind;
            let workers = 2usize.max(
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2),
            );
            tracing::info!(%bind, "serving Guildhall: the web app at / and the API at /api/v1");
            actix_web::rt::System::new().block_on(async move {
                actix_web::HttpServer::new(move || app::build(state.clone()))
                    .workers(workers)
                    .bind(bind)
                    .with_context(|| format!("cannot listen on {bind} (GUILDHALL_BIND)"))?
                    .run()
                    .await
                    .context("HTTP server failed")
            })?;
            if let Some(r) = runner {
                r.shutdown();
            }
            index_runner.shutdown();
            Ok(())
        }
    }
}

fn progress_bar(total: u64, message: &'static str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(message);
    bar
}

fn print_demo(created: bool, bind: std::net::SocketAddr) {
    println!();
    println!(
        "Guildhall demo data {}:",
        if created {
            "created"
        } else {
            "already present"
        }
    );
    println!("  password for every demo account: {}", demo::DEMO_PASSWORD);
    for a in demo::ACCOUNTS {
        println!("  {:<34} {}", a.email, a.role);
    }
    println!("  projects: actix-web, diesel, tantivy, and genai (the history of genai.stackexchange.com)");
    println!("Open http://{bind}/ in a browser, or try the API:");
    println!("  curl -s http://{bind}/api/v1/projects");
    println!(
        "  curl -s -X POST http://{bind}/api/v1/auth/login -H 'content-type: application/json' \\\n       -d '{{\"email\":\"{}\",\"password\":\"{}\"}}'",
        demo::ACCOUNTS[3].email,
        demo::DEMO_PASSWORD
    );
    println!();
}

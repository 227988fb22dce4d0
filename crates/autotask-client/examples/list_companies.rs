//! Lists Autotask companies and the ticket catalog.
//!
//! Run against the simulator (or a real tenant) with
//! `cargo run -p autotask-client --example list_companies`.
//!
//! Environment (simulator defaults in brackets):
//! - `AUTOTASK_BASE_URL` [`http://127.0.0.1:8081`]: REST root; set `AUTOTASK_DISCOVER=1` instead to
//!   discover the zone from `webservices.autotask.net`
//! - `AUTOTASK_USERNAME` [`api@sim.local`]
//! - `AUTOTASK_SECRET` [`sim-secret`]
//! - `AUTOTASK_INTEGRATION_CODE` [`SIMINTEGRATIONCODE000000000`]

use autotask_client::{AutotaskClient, Credentials};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let credentials = Credentials::new(
        env_or("AUTOTASK_USERNAME", "api@sim.local"),
        env_or("AUTOTASK_SECRET", "sim-secret"),
        env_or("AUTOTASK_INTEGRATION_CODE", "SIMINTEGRATIONCODE000000000"),
    );
    let mut builder = AutotaskClient::builder(credentials);
    if std::env::var("AUTOTASK_DISCOVER").is_err() {
        builder = builder.base_url(env_or("AUTOTASK_BASE_URL", "http://127.0.0.1:8081"));
    }
    let client = builder.build()?;
    println!("REST root: {}", client.root().await?);

    let companies = client.companies().await?;
    println!("{} companies:", companies.len());
    for c in &companies {
        println!(
            "  {:>10}  {:<40} {}",
            c.id.unwrap_or_default(),
            c.company_name.as_deref().unwrap_or(""),
            if c.is_active == Some(true) { "active" } else { "inactive" }
        );
    }

    let catalog = client.catalog().await?;
    let lists = [
        ("statuses", &catalog.statuses),
        ("priorities", &catalog.priorities),
        ("queues", &catalog.queues),
        ("sources", &catalog.sources),
        ("issue types", &catalog.issue_types),
        ("sub-issue types", &catalog.sub_issue_types),
        ("work types", &catalog.work_types),
    ];
    for (name, values) in lists {
        println!("{name}:");
        for v in values.iter() {
            let parent = v.parent.map(|p| format!(" (issue type {p})")).unwrap_or_default();
            let inactive = if v.active { "" } else { " [inactive]" };
            println!("  {:>10}  {}{parent}{inactive}", v.id, v.label);
        }
    }
    let usage = client.budget_usage();
    println!("requests this hour: {}/{}", usage.used, usage.limit);
    Ok(())
}

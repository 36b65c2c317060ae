//! Searches a person's payables as a channel would, and prints the signed answer.
//! Usage: `cargo run -p yibao-channel-client --example search -- BASE_URL CHANNEL SECRET ID_NUMBER [NAME]`

use yibao_channel_client::types::SearchRequest;
use yibao_channel_client::ChannelClient;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, channel, secret, id_number, rest @ ..] = args.as_slice() else {
        eprintln!("usage: search BASE_URL CHANNEL SECRET ID_NUMBER [NAME]");
        std::process::exit(2);
    };
    let client = ChannelClient::new(base, channel.clone(), secret.as_bytes().to_vec())?;
    let request = SearchRequest {
        id_number: id_number.clone(),
        insured_number: None,
        name: rest.first().cloned(),
        region: None,
        fee_year: None,
        agent_code: None,
    };
    match client.search(&request).await {
        Ok(found) => println!("{}", serde_json::to_string_pretty(&found)?),
        Err(err) => {
            eprintln!("{err}");
            std::process::exit(1);
        }
    }
    Ok(())
}

//! async-graphql's own WebSocket integration on axum, the peer of the GraphQL scenario:
//! `peer_async_graphql PORT`. See [`benches::peer::graphql`].

fn main() -> std::io::Result<()> {
    benches::peer::main_with(
        "peer_async_graphql",
        benches::peer::graphql::serve_async_graphql,
    )
}

//! The KafkaConnect controller: Apache Kafka Connect workers (distributed mode) for a
//! Kafka cluster, their internal topics, and their REST Service.

pub mod render;

-- First start of the compose PostgreSQL: one database per service that owns tables, and one
-- for Rucio. All are owned by POSTGRES_USER (the entrypoint runs this file as that user).
CREATE DATABASE gateway;
CREATE DATABASE workflows;
CREATE DATABASE catalogue;
CREATE DATABASE zenodo;
CREATE DATABASE ivoa;
CREATE DATABASE rucio;

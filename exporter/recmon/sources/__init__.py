"""Reading a recommender's database: the reference schema, engines and the SQL recmon runs."""

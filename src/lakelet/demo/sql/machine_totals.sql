-- One statement across the three layers: units and revenue per machine from the raw
-- files (schema on read), the curated Iceberg table and the warehouse copy.
-- The three columns of each pair must agree; the demo checks that they do.
WITH raw_totals AS (
    SELECT
        machine_id,
        CAST(sum(quantity) AS BIGINT) AS units,
        CAST(sum(quantity * CAST(unit_price AS DECIMAL(10, 2))) AS DECIMAL(18, 2)) AS revenue
    FROM raw.sales
    GROUP BY machine_id
),
curated_totals AS (
    SELECT
        machine_id,
        any_value(city) AS city,
        CAST(sum(units) AS BIGINT) AS units,
        CAST(sum(revenue) AS DECIMAL(18, 2)) AS revenue
    FROM curated.daily_machine_sales
    GROUP BY machine_id
),
warehouse_totals AS (
    SELECT
        machine_id,
        CAST(sum(units) AS BIGINT) AS units,
        CAST(sum(revenue) AS DECIMAL(18, 2)) AS revenue
    FROM analytics.daily_machine_sales
    GROUP BY machine_id
)
SELECT
    coalesce(r.machine_id, c.machine_id, w.machine_id) AS machine_id,
    c.city,
    r.units AS raw_units,
    c.units AS curated_units,
    w.units AS warehouse_units,
    r.revenue AS raw_revenue,
    c.revenue AS curated_revenue,
    w.revenue AS warehouse_revenue
FROM raw_totals AS r
FULL JOIN curated_totals AS c ON c.machine_id = r.machine_id
FULL JOIN warehouse_totals AS w ON w.machine_id = coalesce(r.machine_id, c.machine_id)
ORDER BY w.revenue DESC NULLS LAST, machine_id

-- Nothing is silently dropped: every input row is a kept customer, a duplicate
-- record merged into one, or a quarantined row. Returns a row when that fails.
with

rows_read as (

    -- every record of the file: the parsed rows and those that could not be split into fields
    select
        (select count(*) from {{ source('raw', 'customers') }})
        + (select count(*) from {{ source('raw', 'customers_rejected') }}) as rows

),

summary as (

    select
        sum(rows) filter (where item = 'rows_read') as rows_read,
        sum(rows) filter (where item in ('customers_kept', 'duplicate_records_merged', 'rows_quarantined'))
            as rows_accounted

    from {{ ref('data_quality_summary') }}
    where section = 'accounting'

)

select
    rows_read.rows as rows_in_source,
    summary.rows_read,
    summary.rows_accounted

from rows_read
cross join summary
where rows_read.rows <> summary.rows_read
    or summary.rows_read <> summary.rows_accounted

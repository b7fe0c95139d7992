{#- A few quarantined order-line values per reason, as exported, most frequent first, for
    the report (cut when long, as in quarantine_examples). -#}
{% set max_length = var('quarantine_example_max_length', 120) %}

with

quarantined as (

    select * from {{ ref('int_orders_validated') }}
    where quarantine_reason is not null

),

value_counts as (

    select
        quarantine_reason,
        source_value,
        count(*) as rows,
        min(source_row_number) as first_source_row_number

    from quarantined
    group by quarantine_reason, source_value

),

ranked as (

    select
        *,
        row_number() over (partition by quarantine_reason order by rows desc, first_source_row_number) as example_rank

    from value_counts

),

final as (

    select
        quarantine_reason,
        cast(example_rank as integer) as example_rank,
        case
            when length(source_value) > {{ max_length }} then concat(left(source_value, {{ max_length - 1 }}), '…')
            else source_value
        end as source_value,
        cast(rows as bigint) as rows,
        first_source_row_number

    from ranked
    where example_rank <= {{ var('quarantine_examples_per_reason', 3) }}

)

select * from final

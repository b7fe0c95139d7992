{#- A few quarantined values per reason, as exported, for the report's data-quality page:
    the most frequent offending values first. Values are data: the report shows them as
    text (escaped), and long ones are cut here so that a page stays a page. -#}
{% set max_length = var('quarantine_example_max_length', 120) %}

with

quarantine as (

    select * from {{ ref('customer_quarantine') }}

),

value_counts as (

    select
        quarantine_reason,
        rule,
        feature,
        column_name,
        source_value,
        count(*) as rows,
        min(source_row_number) as first_source_row_number

    from quarantine
    group by quarantine_reason, rule, feature, column_name, source_value

),

ranked as (

    select
        *,
        row_number() over (
            partition by quarantine_reason
            order by rows desc, first_source_row_number
        ) as example_rank

    from value_counts

),

final as (

    select
        quarantine_reason,
        rule,
        feature,
        cast(example_rank as integer) as example_rank,
        column_name,
        case
            when length(source_value) > {{ max_length }}
                then concat(left(source_value, {{ max_length - 1 }}), '…')
            else source_value
        end as source_value,
        coalesce(length(source_value) > {{ max_length }}, false) as is_truncated,
        cast(rows as bigint) as rows,
        first_source_row_number

    from ranked
    where example_rank <= {{ var('quarantine_examples_per_reason', 3) }}

)

select * from final
